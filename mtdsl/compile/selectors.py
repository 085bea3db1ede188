"""Parameter selectors: anchored globs over qualified parameter names.

`*` matches one name segment, `**` any number of segments (including none), and
`{1..3}` / `{a,b}` alternatives inside a segment. A selector matches the whole name:
`bn` never matches `bn10`, unlike substring keys.

When several selectors match a parameter the most specific wins: more literal segments
first; at equal count, a selector whose literal segments name modules (a scope such as
`head.**`) beats one that names only the tensor (`**.weight`). Anything still tied is
ambiguous and reported.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_RANGE = 10_000
MAX_WILDCARDS = 8


def _split(pattern: str) -> list[str]:
    """Dot-separated segments; dots inside `{1..3}` belong to the segment."""
    return re.findall(r"(?:\{[^}]*\}|[^.{])+", pattern)


@lru_cache(maxsize=None)
def _regex(pattern: str) -> re.Pattern:
    out = []
    segments = _split(pattern)
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "**":
            out.append(r"(?:[^.]+(?:\.[^.]+)*)?" if last else r"(?:[^.]+\.)*")
            continue
        out.append(_segment(seg) + ("" if last else r"\."))
    return re.compile("".join(out) + r"\Z")


def _segment(seg: str) -> str:
    def alt(m):
        body = m.group(1)
        r = re.fullmatch(r"(\d+)\.\.(\d+)", body)
        if r:
            options = [str(n) for n in range(int(r.group(1)), int(r.group(2)) + 1)]
        else:
            options = body.split(",")
        return "(?:" + "|".join(re.escape(o.strip()) for o in options) + ")"

    out, pos = "", 0
    for m in re.finditer(r"\{([^}]*)\}|\*", seg):
        out += re.escape(seg[pos:m.start()])
        out += r"[^.]*" if m.group(0) == "*" else alt(m)
        pos = m.end()
    return out + re.escape(seg[pos:])


def valid(pattern: str) -> str | None:
    """Why a pattern is malformed, or None."""
    if not pattern or ".".join(_split(pattern)) != pattern:
        return "a selector is dot-separated names; empty segments are not allowed"
    if re.search(r"\*\*\w|\w\*\*", pattern):
        return "`**` must be a whole segment, e.g. `layer1.**`"
    # Bounds that keep matching fast: a range becomes one alternative per number, and every
    # wildcard multiplies the ways a regex can try to match a name.
    for lo, hi in re.findall(r"\{(\d+)\.\.(\d+)\}", pattern):
        if int(hi) - int(lo) >= MAX_RANGE:
            return f"a range spans at most {MAX_RANGE:,} numbers; `{{{lo}..{hi}}}` spans more"
    if pattern.count("*") > 2 * MAX_WILDCARDS:
        return f"a selector holds at most {MAX_WILDCARDS} wildcards"
    return None


def matches(pattern: str, name: str) -> bool:
    return _regex(pattern).match(name) is not None


def specificity(pattern: str) -> tuple[int, int]:
    segments = _split(pattern)
    literal = [i for i, s in enumerate(segments) if "*" not in s]
    return len(literal), sum(1 for i in literal if i < len(segments) - 1)


def resolve(name: str, patterns: list[str]) -> tuple[str | None, list[str]]:
    """The winning pattern for `name`, and all patterns tied with it (len > 1 = ambiguous)."""
    hits = [p for p in patterns if matches(p, name)]
    if not hits:
        return None, []
    best = max(specificity(p) for p in hits)
    tied = [p for p in hits if specificity(p) == best]
    return tied[0], tied
