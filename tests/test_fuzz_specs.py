"""A fixed-seed share of the spec fuzzer (tests/fuzz_specs.py; `make fuzz` runs 10,000+
cases): mutants of the shipped specs and random programs of the grammar are accepted or
rejected with located diagnostics, never an internal error or a long wait; generated valid
specs check, compile and give exactly their values."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import fuzz_specs as fuzz

QUICK = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def sandbox():
    box = fuzz.Sandbox()
    yield box
    box.close()


def _report(bad) -> str:
    return "\n\n".join(f"{o.kind} ({o.seconds:.2f} s): {what}\n{o.detail}" for what, o in bad[:3])


def test_mutants_of_the_shipped_specs_are_accepted_or_located(sandbox):
    counts, bad = fuzz.run_mutants(250, seed=1, sandbox=sandbox)
    assert not bad, _report(bad)
    assert sum(counts.values()) == 250
    # The mutations do reach the checker's error paths, and some leave valid specs.
    assert counts["rejected"] > 100 and counts["accepted"] > 0


@QUICK
@given(fuzz.grammar_programs())
def test_random_programs_of_the_grammar_are_accepted_or_located(sandbox, text):
    outcome = sandbox.check(fuzz.Path("random.mt"), text)
    assert outcome.kind in ("accepted", "rejected"), f"{text!r}\n{outcome.detail}"


@QUICK
@given(fuzz.valid_specs())
def test_generated_valid_specs_check_compile_and_give_their_values(sandbox, case):
    problem = fuzz.check_valid(sandbox, case)
    assert problem is None, f"{case.text}\n{problem}"


def test_the_checker_flags_what_the_fuzzer_counts_as_bad(sandbox):
    """The fuzzer's verdicts can fail: a crash, an unlocated diagnostic and a slow check are
    told apart from a located rejection."""
    rejected = sandbox.check(fuzz.Path("omniglot_mlp_ticket.mt"), "experiment broken {")
    assert rejected.kind == "rejected"
    missing = sandbox.check(fuzz.Path("missing.mt"), b"")  # an empty file: rejected, located at 1:1
    assert missing.kind == "rejected"
    assert fuzz.check_file(sandbox.dir / "no" / "such.mt").kind == "unlocated"
