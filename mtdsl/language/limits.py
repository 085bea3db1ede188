"""The bounds every stage keeps to, so no spec can make `mtdsl` crash, hang or flood.

Real specs sit far inside them (the shipped ones: files of at most 4 KB, brackets nested 4
deep, integers below 10**6); a spec beyond one gets a located diagnostic, never a
traceback or a long wait. They live together so the docs and tests can name them.
"""

from __future__ import annotations

# A spec file's size. Parsing costs tens of microseconds per token, so this keeps the
# slowest possible parse to about a second.
MAX_FILE_BYTES = 128 * 1024

# Brackets open at once, and the depth of the syntax tree (a long `1 + 1 + ...` or
# `- - - 1` is deep without brackets). Every later stage walks the tree recursively.
MAX_BRACKETS = 48
MAX_TREE_DEPTH = 160

# Integers are int64, as torch stores them; floats must be finite.
MAX_INT = 2**63 - 1

# Elements one evaluated list may hold (`range(10**9)`), and evaluation steps one value
# may take, references followed included (`b: a + a`, `c: b + b`, ...).
MAX_LIST = 100_000
MAX_WORK = 1_000_000

# Layers one model may expand to (`for i in range(1000) { for j in range(1000) { ... } }`).
# The largest shipped network, WRN-28-10, has 93.
MAX_LAYERS = 10_000

# Points of one sweep (each is compiled in full); the shipped sweeps have 48.
MAX_SWEEP_POINTS = 256

# References followed inside one another (`a: b.x`, `b: c.y`, ...).
MAX_REFERENCE_DEPTH = 32

# Diagnostics: characters of a message or hint, and of the quoted line around the caret.
MAX_MESSAGE = 300
QUOTE_WIDTH = 100
