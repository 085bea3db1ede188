"""Spec fuzzing: what `mtdsl check` does with specs nobody wrote on purpose.

Three sources of specs, each checked in process exactly as the CLI checks a file
(`compile_ref`, then every diagnostic rendered as text and JSON):
  * mutants: the shipped specs (specs/*.mt and specs/lib/models.mt) with one to three
    random edits: characters and lines deleted, duplicated, swapped, tokens replaced by
    awkward ones (huge numbers, bad escapes, deep nesting, YAML lists, strings for names);
  * syntax: random programs of the grammar itself (hypothesis.extra.lark);
  * valid: specs generated to be correct, in varied spellings (`:` or `=`, sections or
    dotted paths, numbers as expressions, seeds as `range`), with the values they must give.

Every mutant and random program must be accepted, or rejected with diagnostics that all
point into a file (exit 2); never an internal error, never more CPU than `limit_s` allows
for its size, never a diagnostic longer than `MAX_RENDERED` characters. Every valid spec
must check, compile and give exactly its values.

`make fuzz` runs this file as a script (10,000 cases by default) and prints the counts;
tests/test_fuzz_specs.py runs a small fixed-seed share of it in `make test`.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "specs"

# CPU seconds one check may take: a base, and time in proportion to the file's size, as
# parsing is linear (about 13 ms per KiB alone on a 2-core CPU; a mutant that duplicated
# one line 5000 times, 80 KiB, took 1.0 s alone and 2.09 s on a loaded machine). What this
# guards against, a check that grows faster than its input, overshoots it by far.
LIMIT_S = 2.0
LIMIT_S_PER_KIB = 0.04
MAX_RENDERED = 5000  # characters one rendered diagnostic may take
BAD_KINDS = ("internal", "unlocated", "slow", "flooded")


# ---- checking one file, as the CLI does -------------------------------------------------------

@dataclass
class Outcome:
    kind: str  # accepted, rejected, or one of BAD_KINDS
    seconds: float
    detail: str = ""


class _Hang(Exception):
    pass


@contextmanager
def _deadline(seconds: float):
    """Interrupts a check that hangs, so one bad case cannot stall the whole run."""
    def interrupt(signum, frame):
        raise _Hang()
    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def limit_s(size: int) -> float:
    """The CPU seconds checking a spec of `size` bytes may take."""
    return LIMIT_S + LIMIT_S_PER_KIB * size / 1024


def check_file(path: Path, size: int | None = None) -> Outcome:
    """`path` checked as the CLI checks it; `size`: the bytes the case adds (the file's own
    size by default; a mutated library checked through a spec that imports it)."""
    from mtdsl.cli.select import compile_ref
    from mtdsl.errors import SpecError

    if size is None:
        size = path.stat().st_size if path.is_file() else 0
    limit = limit_s(size)
    start = time.process_time()
    try:
        with _deadline(20 * limit):
            try:
                compiled = compile_ref(str(path), [])
                diagnostics = [w for c in compiled for w in c.warnings]
                kind = "accepted"
            except SpecError as e:
                diagnostics = e.diagnostics
                kind = "rejected" if diagnostics else "unlocated"
            detail = ""
            for d in diagnostics:
                text = d.render()
                d.to_json()
                if d.span is None:
                    kind, detail = "unlocated", text[:300]
                elif len(text) > MAX_RENDERED:
                    kind, detail = "flooded", f"{len(text)} characters: {text[:300]}"
    except _Hang:
        return Outcome("slow", time.process_time() - start, "still running after the deadline")
    except Exception:  # noqa: BLE001 - what the fuzzer is looking for
        return Outcome("internal", time.process_time() - start, traceback.format_exc(limit=-4))
    seconds = time.process_time() - start
    if seconds > limit and kind not in BAD_KINDS:
        kind, detail = "slow", f"{seconds:.2f} s (limit {limit:.2f} s)"
    return Outcome(kind, seconds, detail)


class Sandbox:
    """A copy of specs/ in a temporary folder: a mutant replaces one file, is checked from
    there (so its imports resolve), and the original is put back."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mtdsl-fuzz-"))
        shutil.copytree(SHIPPED, self.dir / "specs")
        self.originals = {p.relative_to(SHIPPED): p.read_bytes() for p in SHIPPED.rglob("*.mt")}

    def check(self, rel: Path, text: str | bytes, entry: Path | None = None) -> Outcome:
        target = self.dir / "specs" / rel
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        target.write_bytes(data)
        try:
            return check_file(self.dir / "specs" / (entry or rel), len(data))
        finally:
            target.write_bytes(self.originals.get(rel, b""))

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- mutants of the shipped specs -------------------------------------------------------------

AWKWARD = [
    "9" * 400, "9" * 5000, "9223372036854775807", "9223372036854775808", "1e999", "1e-400", "1e308 * 10",
    "9223372036854775807 * 2", "9223372036854775807 + 1", "-9223372036854775807 - 2", "0.0 / 0.0", "1 / 0",
    "7 % 0", '"C:\\Users\\new"', '"\\x"', '"\\N"', '"\\ud800"', '"\\u00e9"', '"é"', "[" * 60 + "1" + "]" * 60,
    "(" * 60 + "1" + ")" * 60, " + ".join(["1"] * 300), "- " * 300 + "1", "range(100000000)", "range(1, 4, 0)",
    "range(1, 4)", "range(-9223372036854775807, 9223372036854775807)", "min([])", "max([1, 2], 3)",
    "max(10000, 30000)", "min(1, [2])", "len(1)", "len([1, 2])", '"omniglot"', "omniglot", "omniglot()",
    "true", "false", '"yes"', "none", "[]", "{}", "{ a: 1 }", "\n- 1\n- 2\n", "\ufeff", "\f", "\x00", "\r",
    "\u2028", "é", "\\", "'x'", "kind: adam", "masked", "meta", "fixed", '"**.weight"', '"layer{1..1000000}.weight"',
    '"' + ".".join(["**"] * 12) + '.x"', '"*a*a*a*a*a*a*a*a*a*a*b"', "task.ways", "task.ways.x", "outer", "seeds",
    'env("MTDSL_FUZZ_UNSET")', 'env("HOME", default: 1)', "sgd", "adam(lr: 0)", "cosine(warmup: 100000)", "-1",
    "0", "0.5", "3.0", "[1, 1, 1]", "x: 1", "x { }", "experiment", "extends", "import", "sweep", "model",
    "block", "residual", "for", "in", "->", ":", "=", ",", ".", "[", "]", "(", ")", "{", "}", '"', "//",
]
CHARS = list("{}[]()\":,.=-+*/%\\\n\t #_aZ09é\f\x00\ufeff\u00a0'")
_TOKEN = re.compile(r'[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|"(?:[^"\\\n]|\\.)*"|//[^\n]*|\S')


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        text = rng.choice(_MUTATIONS)(text, rng)
    return text


def _replace_token(text, rng):
    tokens = list(_TOKEN.finditer(text))
    if not tokens:
        return text + rng.choice(AWKWARD)
    m = rng.choice(tokens)
    new = rng.choice(AWKWARD) if rng.random() < 0.7 else rng.choice(tokens).group()
    return text[:m.start()] + new + text[m.end():]


def _delete_span(text, rng):
    i = rng.randrange(len(text) + 1)
    return text[:i] + text[i + rng.randint(1, 20):]


def _insert_char(text, rng):
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(CHARS) + text[i:]


def _insert_awkward(text, rng):
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(AWKWARD) + text[i:]


def _lines(fn):
    def edit(text, rng):
        lines = text.split("\n")
        return "\n".join(fn(lines, rng) if lines else lines)
    return edit


@_lines
def _duplicate_line(lines, rng):
    i = rng.randrange(len(lines))
    return lines[:i + 1] + [lines[i]] + lines[i + 1:]


@_lines
def _delete_line(lines, rng):
    i = rng.randrange(len(lines))
    return lines[:i] + lines[i + 1:]


@_lines
def _swap_lines(lines, rng):
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines = list(lines)
    lines[i], lines[j] = lines[j], lines[i]
    return lines


def _repeat_span(text, rng):
    i = rng.randrange(len(text) + 1)
    span = text[i:i + rng.randint(1, 12)]
    return text[:i] + span * rng.choice([2, 50, 5000]) + text[i:]


_MUTATIONS = [_replace_token, _replace_token, _delete_span, _insert_char, _insert_awkward, _duplicate_line,
              _duplicate_line, _delete_line, _swap_lines, _repeat_span]


def run_mutants(cases: int, seed: int, sandbox: Sandbox) -> tuple[Counter, list[tuple[str, Outcome]]]:
    """`cases` mutants of the shipped specs; returns the count of each outcome and the bad ones."""
    rng = random.Random(seed)
    files = sorted(sandbox.originals)
    counts: Counter = Counter()
    bad = []
    for n in range(cases):
        rel = rng.choice(files)
        original = sandbox.originals[rel].decode("utf-8")
        text = mutate(original, rng)
        # A mutated library is checked through a spec that imports it.
        entry = Path("omniglot_mlp_ticket.mt") if rel.parts[0] == "lib" else None
        outcome = sandbox.check(rel, text, entry)
        counts[outcome.kind] += 1
        if outcome.kind in BAD_KINDS:
            bad.append((f"case {n} (seed {seed}): {rel}\n{text[:2000]}", outcome))
    return counts, bad


# ---- random programs of the grammar -----------------------------------------------------------

def grammar_programs():
    """Random texts the grammar derives: odd in every way the grammar allows."""
    from importlib import resources

    from hypothesis.extra.lark import from_lark
    from lark import Lark

    grammar = resources.files("mtdsl.language").joinpath("mt.lark").read_text()
    return from_lark(Lark(grammar, parser="lalr", start="start"), start="start")


# ---- valid specs, spelt in many ways ----------------------------------------------------------

@dataclass
class Valid:
    text: str
    values: dict = field(default_factory=dict)  # dotted path -> the value it must resolve to


def valid_specs():
    """Specs that must check and compile, with the values they must resolve to."""
    from hypothesis import strategies as st

    @st.composite
    def number(draw, n: int) -> str:
        """`n`, written as any expression of the language that evaluates to it."""
        k = draw(st.integers(0, 50))
        return draw(st.sampled_from([str(n), f"({n})", f"{n - k} + {k}", f"{n + k} - {k}", f"{n} * 1",
                                     f"floor({2 * n} / 2)", f"floor({n} + 0.5)", f"max({n}, {n - k})", f"min({n}, {n + k})",
                                     f"max([{n - k}, {n}])", f"len({[0] * min(n, 3)})" if n <= 3 else str(n)]))

    @st.composite
    def spec(draw) -> Valid:
        sep = draw(st.sampled_from([": ", " = ", ":"]))
        comma = draw(st.sampled_from(["", ","]))
        note = draw(st.sampled_from(["", "  // a comment", "  // \"quoted\" {braces} [brackets]"]))
        regression = draw(st.booleans())
        ways = None if regression else draw(st.integers(2, 20))
        shots = draw(st.integers(1, 5))
        first = draw(st.integers(0, 1000))
        count = draw(st.integers(1, 4))
        seeds_text, seeds = draw(st.sampled_from([
            (f"range({first}, {first + count})", list(range(first, first + count))),
            ("[" + ", ".join(str(first + 2 * i) for i in range(count)) + "]", [first + 2 * i for i in range(count)]),
        ]))
        iterations = draw(st.integers(0, 100_000))
        meta_batch = draw(st.integers(1, 32))
        steps = draw(st.integers(0, 5))
        lr = draw(st.sampled_from([0.4, 0.01, 1e-3, 2.5, 0]))
        roles = draw(st.sampled_from(["ticket", "maml", "anil"]))
        dotted = draw(st.booleans())
        if regression:
            data = 'train: sinusoid\n    test: sinusoid(split: "test")'
            hidden = draw(st.integers(1, 64))
            model = f"sine_mlp(hidden: {draw(number(hidden))})"
            task = [("shots", draw(number(shots)))]
        else:
            size = draw(st.sampled_from([28, 14]))
            data = (f'root: "/nonexistent/data"\n    train: omniglot(split: "train", size: {size})\n'
                    f'    test: omniglot(size: {size})')
            hidden = draw(st.lists(st.integers(1, 64), min_size=1, max_size=3))
            width = draw(st.integers(1, 3))
            model = (f"mlp(hidden: [{', '.join(draw(number(h)) for h in hidden)}], width: {draw(number(width))}, "
                     f"classes: task.ways)")
            task = [("ways", draw(number(ways))), ("shots", draw(number(shots)))]
        params = {"ticket": '"**.weight": masked\n    "head.**", "**.bias", "**.bn.**": fixed',
                  "maml": '"**": meta',
                  "anil": '"head.**": meta\n    "**": fixed'}[roles]
        if regression and roles == "ticket":
            params = '"layer2.weight": masked\n    "**": meta'
        task_text = ("\n".join(f"  task.{k}{sep}{v}{comma}" for k, v in task) if dotted
                     else "  task { " + ", ".join(f"{k}{sep}{v}" for k, v in task) + " }")
        text = f"""import "lib/models.mt"
// generated{note}
experiment generated {{
  seeds{sep}{seeds_text}{comma}{note}
  data {{
    {data}
  }}
{task_text}
  model{sep}{model}
  params {{
    {params}
  }}
  inner {{ steps{sep}{draw(number(steps))}, lr{sep}{lr} }}
  outer.optimizer{sep}sgd(lr: 10, momentum: 0.9){comma}
  outer.iterations{sep}{draw(number(iterations))}
  outer {{ meta_batch{sep}{draw(number(meta_batch))} }}
}}
"""
        values = {"seeds": seeds, "task.ways": ways, "task.shots": shots, "outer.iterations": iterations,
                  "outer.meta_batch": meta_batch, "inner.steps": steps, "inner.lr": {"**": float(lr)}}
        return Valid(text, values)

    return spec()


def check_valid(sandbox: Sandbox, case: Valid) -> str | None:
    """None if the spec checks, compiles and gives its values; else what went wrong."""
    from mtdsl.cli.select import compile_ref
    from mtdsl.errors import SpecError

    rel = Path("generated.mt")
    path = sandbox.dir / "specs" / rel
    path.write_text(case.text)
    try:
        compiled = compile_ref(str(path), [])
    except SpecError as e:
        return "rejected:\n" + "\n".join(d.render() for d in e.diagnostics)
    finally:
        path.unlink()
    if len(compiled) != 1:
        return f"{len(compiled)} experiments"
    exp = compiled[0].experiment
    for dotted, want in case.values.items():
        got = exp
        for part in dotted.split("."):
            got = getattr(got, part)
        if got != want:
            return f"{dotted} is {got!r}, not {want!r}"
    return None


# ---- the script -------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="mutants (grammar and valid cases add a fifth)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    from hypothesis import HealthCheck, given, settings

    sandbox = Sandbox()
    started = time.time()
    try:
        counts, bad = run_mutants(args.cases, args.seed, sandbox)
        syntax: Counter = Counter()
        valid: Counter = Counter()
        examples = max(1, args.cases // 10)
        quiet = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))

        @quiet
        @given(grammar_programs())
        def random_syntax(text):
            outcome = sandbox.check(Path("random.mt"), text)
            syntax[outcome.kind] += 1
            if outcome.kind in BAD_KINDS:
                bad.append((f"grammar program\n{text[:2000]!r}", outcome))

        @quiet
        @given(valid_specs())
        def valid_ones(case):
            problem = check_valid(sandbox, case)
            valid["accepted with its values" if problem is None else "wrong"] += 1
            if problem is not None:
                bad.append((f"valid spec\n{case.text}", Outcome("wrong", 0.0, problem)))

        random_syntax()
        valid_ones()
    finally:
        sandbox.close()
    total = sum(counts.values()) + sum(syntax.values()) + sum(valid.values())
    print(f"mutants of the shipped specs: {sum(counts.values())}")
    for kind in ("accepted", "rejected", *BAD_KINDS):
        print(f"  {kind:10} {counts[kind]}")
    print(f"random programs of the grammar: {sum(syntax.values())}")
    for kind in ("accepted", "rejected", *BAD_KINDS):
        print(f"  {kind:10} {syntax[kind]}")
    print(f"generated valid specs: {sum(valid.values())}  (accepted with their values: "
          f"{valid['accepted with its values']}, wrong: {valid['wrong']})")
    print(f"all cases: {total} in {time.time() - started:.0f} s; "
          f"internal errors: {counts['internal'] + syntax['internal']}, "
          f"over their limit: {counts['slow'] + syntax['slow']}")
    for what, outcome in bad[:10]:
        print(f"\n--- {outcome.kind} ({outcome.seconds:.2f} s): {what}\n{outcome.detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
