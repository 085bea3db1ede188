"""Warnings for specs that are valid field by field but contradict themselves: settings that
cannot take effect in the run the spec describes. `mtdsl check` prints them and still
succeeds; each points at the setting that does nothing."""

from __future__ import annotations

from ..language.diagnostics import Diagnostic, clip
from ..validate.resolve import Resolved
from .plan import ParamPlan


def contradictions(resolved: Resolved, params: tuple[ParamPlan, ...]) -> list[Diagnostic]:
    exp, located = resolved.experiment, resolved.located
    spans, keys, origins = located.spans, located.key_spans, located.origins
    fallback = resolved.definition.name_span
    out: list[Diagnostic] = []

    def warn(message: str, path: tuple, hint: str | None = None, key: bool = False) -> None:
        table = keys if key else spans
        span = table.get(path) or keys.get(path) or keys.get(path[:1]) or fallback
        out.append(Diagnostic(message, span, hint, severity="warning"))

    iterations = exp.outer.iterations
    if iterations > 0:  # 0 iterations: nothing is trained, so nothing below can apply
        schedule = exp.outer.schedule
        if schedule is not None and schedule.warmup > iterations:
            warn(f"the warmup ({schedule.warmup} iterations) is longer than the run ({iterations}): "
                 "the learning rate never reaches its full value", ("outer", "schedule", "warmup"),
                 "shorten the warmup, or lengthen the run")
        if exp.eval.every > iterations and ("eval", "every") in keys:  # written, not the default
            warn(f"`eval.every` ({exp.eval.every}) is beyond the run's {iterations} iterations: "
                 "validation runs only at the end", ("eval", "every"), "lower `eval.every`")
    if exp.eval.checkpoint == "best" and exp.data.valid is None:
        warn("`eval.checkpoint: best` needs a validation set, and `data.valid` is not given: "
             "the last state is meta-tested", ("eval", "checkpoint"), "add `data.valid`, or use `last`")
    seen: set[int] = set()
    twice = [(i, seed) for i, seed in enumerate(exp.seeds) if seed in seen or seen.add(seed)]
    if twice:
        listed = ", ".join(str(s) for s in dict.fromkeys(s for _, s in twice))
        warn(f"seed{'s' * (len(twice) > 1)} {clip(listed, 60)} listed more than once: the same run "
             "would run again", ("seeds", twice[0][0]), "list each seed once")
    if not any(p.role == "masked" for p in params):
        own = [path for path, origin in origins.items()
               if path[:1] == ("mask",) and len(path) > 1 and origin in (resolved.name, "--set", "sweep")]
        if own:
            warn("`mask` settings have no effect: no parameter is `masked`", own[0],
                 'mark weights `masked` in `params`, or remove the `mask` settings', key=True)
    return out
