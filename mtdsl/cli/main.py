"""`mtdsl check | show | run`: every command prints located diagnostics for a bad spec and
exits 2; a run that cannot proceed exits 1; nothing a user does shows a traceback."""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer

from ..errors import MtdslError, SpecError
from .app import _fail, _highlighted, app, err, out  # noqa: E402,F401


@app.command()
def check(files: List[str] = typer.Argument(..., help="spec files, or file.mt::experiment"),
          set_: List[str] = typer.Option([], "--set", help="override a field: PATH=VALUE"),
          format: str = typer.Option("text", "--format",
                                     help="text, json, or github (workflow annotations)")) -> None:
    """Validate specs without running them (no torch is imported)."""
    from .select import compile_ref

    if format not in ("text", "json", "github"):
        err.print(f"error: unknown --format `{format}`; use text, json or github", style="bold red",
                  markup=False)
        raise typer.Exit(2)

    problems: list = []
    warnings: list = []
    count = 0
    for ref in files:
        try:
            compiled = compile_ref(ref, set_)
            count += len(compiled)
            for w in (w for c in compiled for w in c.warnings):  # inherited ones once
                if w not in warnings:
                    warnings.append(w)
        except SpecError as e:
            problems += e.diagnostics
    if problems:
        _fail(SpecError(warnings + problems), format)
    if format == "json":
        print(json.dumps([d.to_json() for d in warnings], indent=2))
    elif format == "github":
        for d in warnings:
            print(d.to_github())
    else:
        for d in warnings:
            err.print(_highlighted(d.render()) if err.is_terminal else d.render(), markup=False, soft_wrap=True)
        out.print(f"ok: {count} experiment{'s' * (count != 1)} in {len(files)} file{'s' * (len(files) != 1)}")


@app.command()
def show(ref: str = typer.Argument(..., help="spec file, file.mt::experiment, or a run folder"),
         set_: List[str] = typer.Option([], "--set", help="override a field: PATH=VALUE"),
         batch: bool = typer.Option(False, "--batch", help="also draw one task of every dataset and "
                                    "print what the model is fed (shape, pixel range, mean)")) -> None:
    """Print the compiled model (names, shapes, roles, inner lrs) and the training plan."""
    from pathlib import Path

    from .select import compile_units
    from .show import print_batches, print_compiled

    try:
        if Path(ref).is_dir():  # a run folder: the ticket it found
            from ..report.ticket import print_ticket
            return print_ticket(out, ref)
        for unit in compile_units(ref, set_):
            print_compiled(out, unit.compiled, unit.label)
            if batch:
                print_batches(out, unit.compiled)
    except MtdslError as e:
        _fail(e)


@app.command()
def run(ref: Optional[str] = typer.Argument(None, help="spec file, or file.mt::experiment|sweep"),
        set_: List[str] = typer.Option([], "--set", help="override a field: PATH=VALUE"),
        out_dir: Optional[str] = typer.Option(None, "--out", help="run folder (default runs/<experiment>/<time>)"),
        seed: Optional[int] = typer.Option(None, "--seed", help="run this seed only"),
        device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto"),
        resume: Optional[str] = typer.Option(None, "--resume", help="continue the run in this folder"),
        jobs: int = typer.Option(1, "--jobs", min=1, help="runs in parallel processes (one per GPU with several)"),
        cluster: Optional[str] = typer.Option(None, "--cluster", help="run every (point, seed) as a task of "
                                              "this cluster: ray (RAY_ADDRESS, else a local Ray)"),
        retries: int = typer.Option(1, "--retries", min=0, help="with --jobs or --cluster: times a failed "
                                    "run is tried again before it is reported"),
        log: Optional[str] = typer.Option(None, "--log", help="also log to experiment trackers: tensorboard, "
                                          "mlflow, or both comma-separated (besides the spec's `log`)"),
        estimate: bool = typer.Option(False, "--estimate", help="only say what each run would cost here: "
                                      "parameters, memory, measured seconds per iteration, wall time"),
        profile: bool = typer.Option(False, "--profile", help="print where the time went: task sampling, "
                                     "inner loop, outer step, validation/test, I/O; the top operators")) -> None:
    """Meta-train an experiment (every seed, every sweep point), meta-test it, write run folders."""
    from ..report.trackers import parse_log_option
    from .run import run_ref

    if (ref is None) == (resume is None):
        err.print("error: give a spec to run, or --resume RUN_DIR", style="bold red")
        raise typer.Exit(2)
    if estimate:
        from .estimate import estimate_ref
        try:
            return estimate_ref(ref, set_, seed=seed, device=device, console=out)
        except MtdslError as e:
            _fail(e)
    if cluster not in (None, "ray"):
        err.print(f"error: --cluster {cluster}: the clusters mtdsl runs on are: ray", style="bold red",
                  markup=False)
        raise typer.Exit(2)
    try:
        trackers = parse_log_option(log)
    except ValueError as e:
        err.print(f"error: {e}", style="bold red", markup=False)
        raise typer.Exit(2)
    try:
        run_ref(ref, set_, out_dir=out_dir, seed=seed, device=device, console=out, resume=resume, jobs=jobs,
                log=trackers, profile=profile, cluster=cluster, retries=retries)
    except MtdslError as e:
        _fail(e)
    except KeyboardInterrupt:
        err.print("interrupted: the run folder keeps everything written so far", style="yellow")
        raise typer.Exit(130)


@app.command("test")
def test_(run_dir: str = typer.Argument(..., help="a finished run folder, or a folder of them (every seed)"),
          on: List[str] = typer.Option([], "--on", help='a dataset, e.g. \'omniglot(split: "val")\'; repeatable'),
          ways: Optional[int] = typer.Option(None, "--ways", min=1, help="classes per task (default: the run's)"),
          shots: Optional[int] = typer.Option(None, "--shots", min=1, help="support examples per class"),
          queries: Optional[int] = typer.Option(None, "--queries", min=1, help="query examples per class"),
          steps: Optional[int] = typer.Option(None, "--steps", min=0, help="inner steps at test"),
          tasks: Optional[int] = typer.Option(None, "--tasks", min=1, help="tasks per dataset"),
          set_: List[str] = typer.Option([], "--set", help="override a field: PATH=VALUE"),
          device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto")) -> None:
    """Meta-test finished runs again (other datasets, tasks, steps); adds to each result.json."""
    from pathlib import Path

    from ..recipe.meta_test import TestRequest, meta_test

    request = TestRequest(list(on), ways, shots, queries, steps, tasks, list(set_), device)
    try:
        meta_test(Path(run_dir), request, console=out)
    except MtdslError as e:
        _fail(e)


@app.command()
def fmt(files: List[str] = typer.Argument(..., help=".mt files to format in place"),
        check_only: bool = typer.Option(False, "--check", help="change nothing; exit 1 if a file would change")) -> None:
    """Rewrite specs in the one canonical layout (comments kept; meaning never changes)."""
    from pathlib import Path

    from .tools import format_file

    changed = []
    try:
        for name in files:
            original, formatted = format_file(Path(name))
            if original != formatted:
                changed.append(name)
                if not check_only:
                    Path(name).write_text(formatted)
    except SpecError as e:
        _fail(e)
    verb = "would reformat" if check_only else "reformatted"
    for name in changed:  # one line per file, however long its path, for tools to read
        out.print(f"{verb} {name}", markup=False, soft_wrap=True)
    out.print(f"{len(changed)} of {len(files)} file{'s' * (len(files) != 1)} {verb}")
    if check_only and changed:
        raise typer.Exit(1)


@app.command()
def diff(a: str = typer.Argument(..., help="spec file or file.mt::experiment"),
         b: str = typer.Argument(..., help="spec file or file.mt::experiment"),
         set_: List[str] = typer.Option([], "--set", help="override applied to B: PATH=VALUE")) -> None:
    """What differs between two experiments after inheritance and defaults: `path: old -> new`.
    Exits as diff(1) does: 0 when they are the same, 1 when they differ, 2 on an error."""
    from .tools import diff_lines, resolved_values

    try:
        lines = diff_lines(resolved_values(a, []), resolved_values(b, set_))
    except MtdslError as e:
        e.exit_code = 2  # diff(1)'s "trouble", whatever the error
        _fail(e)
    for line in lines:
        out.print(line, markup=False, soft_wrap=True)
    if not lines:
        out.print("no differences")
    raise typer.Exit(1 if lines else 0)


@app.command()
def lsp() -> None:
    """A language server on stdin/stdout for editors: diagnostics, hover, completion,
    go to definition (see docs/editors.md)."""
    try:
        from ..lsp.server import serve
    except ImportError as e:
        err.print(f"error: the language server needs {e.name}: pip install 'mtdsl[lsp]'",
                  style="bold red", markup=False)
        raise typer.Exit(1)
    serve()


@app.command()
def schema(output: Optional[str] = typer.Option(None, "--out", help="write to this file instead of stdout")) -> None:
    """The JSON Schema of a resolved experiment, for editors and tools."""
    from .tools import schema as build

    text = json.dumps(build(), indent=2) + "\n"
    if output:
        from pathlib import Path
        Path(output).write_text(text)
    else:
        print(text, end="")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # A warning is news for the user (a cache decoded again), not a pointer into our source.
    err.print(f"warning: {message}", style="yellow", markup=False, soft_wrap=True)


def main() -> None:
    """The console script: a bug in mtdsl is reported with where its traceback was saved,
    never dumped over the user's terminal."""
    import warnings

    warnings.showwarning = _show_warning
    try:
        app()
    except Exception:  # noqa: BLE001 - the last line of defence
        import tempfile
        import traceback

        fd, path = tempfile.mkstemp(prefix="mtdsl-crash-", suffix=".txt")
        with open(fd, "w") as f:
            traceback.print_exc(file=f)
        err.print(f"internal error: {sys.exc_info()[1]!r}\nThis is a bug in mtdsl, not in your spec; "
                  f"the traceback is in {path}", style="bold red", markup=False)
        sys.exit(1)


from . import report_commands  # noqa: E402,F401  (registers report, figures, export)

if __name__ == "__main__":
    main()
