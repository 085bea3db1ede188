"""`mtdsl report`: finding runs, grouping seeds into rows, and the four output formats."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest
from typer.testing import CliRunner

from mtdsl.cli.main import app
from mtdsl.errors import RunError
from mtdsl.report.aggregate import aggregate, mean_std
from mtdsl.report.formats import to_json, to_markdown
from mtdsl.report.rundir import read_metrics
from mtdsl.report.runs import find_runs

from report_helpers import acc, make_run, spec


def report(*args):
    return CliRunner().invoke(app, ["report", *map(str, args)])


def flat(text: str) -> str:
    """Messages as one line: the error console wraps long ones at the terminal width."""
    return " ".join(text.split())


@pytest.fixture
def paper(tmp_path):
    """Meta-ticket and MAML at widths 1 and 2, three seeds each (MAML: two at width 2)."""
    values = {("ticket", 1): [0.90, 0.92, 0.94], ("ticket", 2): [0.95, 0.96, 0.97],
              ("maml", 1): [0.88, 0.89, 0.90], ("maml", 2): [0.91, 0.93]}
    for (method, width), means in values.items():
        for seed, mean in enumerate(means, 1):
            make_run(tmp_path / f"{method}-w{width}" / f"seed{seed}", method, seed,
                     acc(mean, ci95=0.01 * seed), spec_doc=spec(width=width))
    return tmp_path


def test_mean_and_sample_std_over_seeds():
    assert mean_std([0.90, 0.92, 0.94]) == pytest.approx((0.92, 0.02))
    assert mean_std([0.5]) == (0.5, None)
    assert mean_std([0.5, None]) == (None, None)
    assert mean_std([0.5, float("nan")]) == (None, None)


def test_rows_group_seeds_by_experiment_and_field(paper):
    table = aggregate(find_runs([paper]).runs, by=["model.width"])
    assert [(r.experiment, r.group) for r in table.rows] == [
        ("maml", (("model.width", 1),)), ("maml", (("model.width", 2),)),
        ("ticket", (("model.width", 1),)), ("ticket", (("model.width", 2),))]
    ticket1 = table.rows[2].cells["omniglot/test"]
    assert ticket1.mean == pytest.approx(0.92) and ticket1.std == pytest.approx(0.02) and ticket1.n == 3
    assert [s.seed for s in ticket1.seeds] == [1, 2, 3]
    assert [s.ci95 for s in ticket1.seeds] == pytest.approx([0.01, 0.02, 0.03])
    assert table.warnings == []


def test_numbers_sort_as_numbers(tmp_path):
    for width in (10, 2):
        make_run(tmp_path / f"w{width}", "ticket", 1, acc(0.9), spec_doc=spec(width=width))
    table = aggregate(find_runs([tmp_path]).runs, by=["model.width"])
    assert [r.group[0][1] for r in table.rows] == [2, 10]


def test_baseline_difference_is_taken_within_each_group(paper):
    table = aggregate(find_runs([paper]).runs, by=["model.width"], baseline="maml")
    deltas = {(r.experiment, r.group[0][1]): r.cells["omniglot/test"].delta for r in table.rows}
    assert deltas[("ticket", 1)] == pytest.approx(0.92 - 0.89)
    assert deltas[("ticket", 2)] == pytest.approx(0.96 - 0.92)
    assert deltas[("maml", 1)] == pytest.approx(0.0)


def test_markdown_and_json_carry_the_same_numbers(paper):
    md = report(paper, "--format", "md", "--by", "model.width", "--baseline", "maml", "--per-seed")
    js = report(paper, "--format", "json", "--by", "model.width", "--baseline", "maml")
    assert md.exit_code == 0 and js.exit_code == 0, md.output + js.output
    document = json.loads(js.stdout)
    rows = {(r["experiment"], r["group"]["model.width"]): r for r in document["rows"]}

    lines = [line for line in md.stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["experiment", "model.width", "seeds", "omniglot/test (acc. %)", "Δ omniglot/test"]
    assert re.fullmatch(r"\|(-+\|){2}(-+:\|){3}", lines[1])
    parsed, seeds = 0, 0
    current = None
    for line in lines[2:]:
        name, width, n, cell, delta = (c.strip() for c in line.strip("|").split("|"))
        if name.startswith("↳ seed"):
            seed = int(name.split()[-1])
            mean, ci95 = map(float, cell.split(" ± "))
            expected = next(s for s in current["cells"]["omniglot/test"]["per_seed"] if s["seed"] == seed)
            assert (mean, ci95) == (round(expected["mean"] * 100, 2), round(expected["ci95"] * 100, 2))
            seeds += 1
            continue
        current = rows[(name, int(width))]
        entry = current["cells"]["omniglot/test"]
        mean, std = map(float, cell.split(" ± "))
        assert int(n) == entry["n"] == len(current["seeds"])
        assert (mean, std) == (round(entry["mean"] * 100, 2), round(entry["std"] * 100, 2))
        if name == "maml":
            assert delta == ""
        else:
            assert float(delta) == round(entry["delta"] * 100, 2)
        parsed += 1
    assert parsed == len(document["rows"]) == 4 and seeds == 11
    assert "mean ± std over seeds" in md.stdout


def test_csv_is_tidy_and_unrounded(paper):
    r = report(paper, "--format", "csv", "--by", "model.width", "--per-seed")
    assert r.exit_code == 0, r.output
    lines = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(lines[0]) == ["experiment", "model.width", "split", "metric", "seeds", "seed", "mean",
                              "std", "ci95", "tasks", "delta"]
    summary = [line for line in lines if line["seed"] == ""]
    assert len(summary) == 4 and len(lines) == 4 + 11
    ticket2 = next(line for line in summary if line["experiment"] == "ticket" and line["model.width"] == "2")
    assert float(ticket2["mean"]) == pytest.approx(0.96) and float(ticket2["std"]) == pytest.approx(0.01)
    seed3 = next(line for line in lines if line["experiment"] == "ticket" and line["seed"] == "3"
                 and line["model.width"] == "1")
    assert float(seed3["mean"]) == pytest.approx(0.94) and float(seed3["ci95"]) == pytest.approx(0.03)
    assert seed3["tasks"] == "600"


def test_terminal_table(paper):
    r = report(paper, "--by", "model.width", "--baseline", "maml")
    assert r.exit_code == 0, r.output
    assert "ticket" in r.stdout and "92.00 ± 2.00" in r.stdout and "+3.00" in r.stdout
    assert r.stderr == ""


def test_runs_of_one_name_but_different_configurations_are_never_averaged(tmp_path):
    # The trap: an untrained baseline (0 iterations) and a trained run under one name.
    make_run(tmp_path / "a", "ticket", 1, acc(0.40), spec_doc=spec(iterations=0))
    make_run(tmp_path / "b", "ticket", 1, acc(0.90), spec_doc=spec(iterations=1000))
    make_run(tmp_path / "c", "ticket", 2, acc(0.92), spec_doc=spec(iterations=1000))
    table = aggregate(find_runs([tmp_path]).runs)
    labels = [(row.experiment, row.cells["omniglot/test"].mean, row.seeds) for row in table.rows]
    assert labels == [("ticket (outer.iterations=0)", pytest.approx(0.40), [1]),
                      ("ticket (outer.iterations=1000)", pytest.approx(0.91), [1, 2])]
    assert table.warnings == []
    r = report(tmp_path, "--format", "md")
    assert r.exit_code == 0 and "| ticket (outer.iterations=0) | 1 | 40.00 |" in r.stdout


def test_seeds_and_locations_are_no_difference(tmp_path):
    # A single-seed run's spec says its one seed; a second machine has its data elsewhere.
    make_run(tmp_path / "a", "ticket", 1, acc(0.9), spec_doc={**spec(root="/cluster"), "seeds": [1]})
    make_run(tmp_path / "b", "ticket", 2, acc(0.8), spec_doc={**spec(root="~/data"), "seeds": [2]})
    table = aggregate(find_runs([tmp_path]).runs)
    assert [(row.experiment, row.seeds) for row in table.rows] == [("ticket", [1, 2])]


def test_a_field_only_newer_runs_record_splits_nothing(tmp_path):
    # A later version added a section: older runs' resolved.json lacks it.
    make_run(tmp_path / "a", "ticket", 1, acc(0.9), spec_doc=spec())
    make_run(tmp_path / "b", "ticket", 2, acc(0.8), spec_doc={**spec(), "log": {"tensorboard": False}})
    table = aggregate(find_runs([tmp_path]).runs)
    assert [(row.experiment, row.seeds) for row in table.rows] == [("ticket", [1, 2])]


def test_only_the_field_that_differs_labels_the_rows(tmp_path):
    make_run(tmp_path / "a", "ticket", 1, acc(0.9), spec_doc=spec(width=1, root="/x"))
    make_run(tmp_path / "b", "ticket", 1, acc(0.8), spec_doc=spec(width=2, root="/y"))
    names = [row.experiment for row in aggregate(find_runs([tmp_path]).runs).rows]
    assert names == ["ticket (model.width=1)", "ticket (model.width=2)"]
    # With --by the field has its own column, and the names need no label.
    table = aggregate(find_runs([tmp_path]).runs, by=["model.width"])
    assert [(row.experiment, row.group) for row in table.rows] == [
        ("ticket", (("model.width", 1),)), ("ticket", (("model.width", 2),))]


def test_a_seed_counted_twice_and_runs_without_resolved_json_are_flagged(tmp_path):
    make_run(tmp_path / "a", "ticket", 2, acc(0.8))
    make_run(tmp_path / "b", "ticket", 2, acc(0.85))
    make_run(tmp_path / "c", "old", 1, acc(0.85))
    (tmp_path / "c" / "resolved.json").unlink()
    table = aggregate(find_runs([tmp_path]).runs)
    assert table.warnings == ["old: 1 of its 1 runs have no resolved.json, so they are grouped by "
                              "experiment name and may mix configurations",
                              "ticket: seed 2 ran more than once; each run counts in the mean and std"]
    r = report(tmp_path)
    assert r.exit_code == 0 and "warning:" in r.stderr and "seed 2 ran more than once" in flat(r.stderr)


def test_runs_differing_only_in_data_location_are_one_configuration(tmp_path):
    make_run(tmp_path / "a", "ticket", 1, acc(0.9), spec_doc=spec(root="/cluster/data"))
    make_run(tmp_path / "b", "ticket", 2, acc(0.8), spec_doc=spec(root="~/data"))
    assert aggregate(find_runs([tmp_path]).runs).warnings == []


def test_a_split_some_seeds_lack_is_flagged_and_counted_right(tmp_path):
    both = {**acc(0.9), "cub/test": ("accuracy", 0.5, 0.01, 600)}
    make_run(tmp_path / "a", "ticket", 1, both)
    make_run(tmp_path / "b", "ticket", 2, acc(0.8))
    table = aggregate(find_runs([tmp_path]).runs)
    assert table.columns == ["omniglot/test", "cub/test"]
    assert table.rows[0].cells["cub/test"].n == 1
    assert table.warnings == ["ticket: cub/test has 1 of the row's 2 runs"]


def test_regression_and_diverged_cells(tmp_path):
    make_run(tmp_path / "a", "sine", 1, {"sinusoid/test": ("mse", 0.5, 0.1, 100)})
    make_run(tmp_path / "b", "sine", 2, {"sinusoid/test": ("mse", 0.7, 0.1, 100)})
    make_run(tmp_path / "c", "bad", 1, {"sinusoid/test": ("mse", float("nan"), None, 100)})
    md = to_markdown(aggregate(find_runs([tmp_path]).runs))
    assert "sinusoid/test (mse)" in md
    assert "| sine | 2 | 0.600 ± 0.141 |" in md
    assert "| bad | 1 | n/a |" in md


def test_paths_may_be_run_folders_result_files_or_parents_and_count_once(tmp_path):
    a = make_run(tmp_path / "x" / "a", "ticket", 1, acc(0.9))
    make_run(tmp_path / "x" / "b", "ticket", 2, acc(0.8))
    found = find_runs([tmp_path, a, a / "result.json"])
    assert len(found.runs) == 2


def test_unfinished_runs_are_skipped_with_a_warning(tmp_path):
    make_run(tmp_path / "done", "ticket", 1, acc(0.9))
    (tmp_path / "running").mkdir()
    (tmp_path / "running" / "resolved.json").write_text("{}")
    found = find_runs([tmp_path])
    assert len(found.runs) == 1 and found.unfinished == [tmp_path / "running"]
    r = report(tmp_path)
    assert r.exit_code == 0 and "skipped 1 unfinished run folder" in flat(r.stderr)


def test_user_mistakes_are_errors_not_tracebacks(tmp_path, paper):
    with pytest.raises(RunError, match="no finished runs"):
        aggregate([])
    with pytest.raises(RunError, match="did you mean `model.width`"):
        aggregate(find_runs([paper]).runs, by=["model.widht"])
    with pytest.raises(RunError, match="did you mean `ticket`"):
        aggregate(find_runs([paper]).runs, baseline="tickt")
    missing = report(tmp_path / "nowhere")
    assert missing.exit_code == 1 and "nowhere: no such file or folder" in flat(missing.stderr)
    assert missing.exception is None or isinstance(missing.exception, SystemExit)
    bad_format = report(paper, "--format", "xlsx")
    assert bad_format.exit_code == 2 and "xlsx" in bad_format.output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no finished runs" in flat(report(empty).stderr)


def test_damaged_files_are_reported_with_their_path(tmp_path):
    make_run(tmp_path / "a", "ticket", 1, acc(0.9))
    (tmp_path / "a" / "result.json").write_text('{"experiment": ')
    r = report(tmp_path)
    assert r.exit_code == 1 and "a/result.json is not valid JSON" in flat(r.stderr)


def test_metrics_reader_drops_only_a_cut_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 1}\n{"iteration": 2}\n{"itera')
    assert read_metrics(path) == [{"iteration": 1}, {"iteration": 2}]
    path.write_text('{"iteration": 1}\n{"itera\n{"iteration": 3}\n')
    with pytest.raises(RunError, match="metrics.jsonl:2"):
        read_metrics(path)


def test_json_document_is_strict_json(paper):
    text = json.dumps(to_json(aggregate(find_runs([paper]).runs)), allow_nan=False)
    document = json.loads(text)
    cell = document["rows"][0]["cells"]["omniglot/test"]
    assert set(cell) == {"metric", "mean", "std", "n", "delta", "per_seed"}
    assert math.isclose(cell["mean"], sum(s["mean"] for s in cell["per_seed"]) / cell["n"])
