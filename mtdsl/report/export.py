"""`mtdsl export`: a run's found network as one file that plain PyTorch loads.

The file is a flat dict of tensors:
  "<param>"         the parameter's value in the found network: weight * mask for a masked
                    tensor, the meta-learned or fixed value otherwise
  "masks/<param>"   the bool mask of each masked tensor
so `module.load_state_dict({k: v for k, v in d.items() if not k.startswith("masks/")})`
loads it into the run's compiled module. A .safetensors file also carries the run's
identity (experiment, seed, spec hash, test results) in its metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mtdsl.errors import RunError
from mtdsl.report.rundir import Run, atomic_write, open_run
from mtdsl.report.ticket import ticket_tensors

MASK_PREFIX = "masks/"
EXTENSIONS = (".safetensors", ".pt")


@dataclass
class Exported:
    path: Path
    values: int  # parameter tensors written
    masks: int  # mask tensors written
    notes: list[str] = field(default_factory=list)


def ticket_file_dict(run: Run) -> dict:
    values, masks = ticket_tensors(run)
    return {**values, **{MASK_PREFIX + name: mask for name, mask in masks.items()}}


def metadata(run: Run) -> dict[str, str]:
    """safetensors metadata (strings only, nested values as JSON text): which run this is,
    and what meta-testing it needs besides the tensors: inner lrs and test-time steps."""
    result, inner = run.result, (run.resolved or {}).get("spec", {}).get("inner", {})
    test_steps = inner.get("test_steps") if inner.get("test_steps") is not None else inner.get("steps")
    return {"format": "mtdsl-ticket", "experiment": run.experiment, "seed": str(run.seed),
            "spec_sha256": str(result.get("spec_sha256", "")),
            "iterations": str(result.get("iterations", "")),
            "test": json.dumps(result.get("test", {})),
            "inner_lr": json.dumps({p["name"]: p["inner_lr"] for p in run.parameters()}),
            "test_steps": json.dumps(test_steps), "run": str(run.path.resolve())}


def check_loads(run: Run, values: dict) -> str:
    """Load `values` into the recompiled module with strict=True: the promise the file makes.
    A spec that cannot be compiled again leaves the file unchecked, and says why."""
    from mtdsl.compile.module import CompiledModel
    from mtdsl.report.recompile import compile_run

    try:
        compiled = compile_run(run)
    except RunError as e:
        return f"not checked against the compiled module: {e}"
    module = CompiledModel(compiled.graph)
    try:
        module.load_state_dict(values, strict=True)
    except RuntimeError as e:
        raise RunError(f"the exported tensors do not fit {run.experiment}'s module: {e}") from e
    return f"checked: loads into CompiledModel({run.experiment}) with load_state_dict(strict=True)"


def export_ticket(run_dir: str | Path, out: str | Path | None = None) -> Exported:
    """Write the run's found network to `out` (.safetensors or .pt; default
    <run>/ticket.safetensors)."""
    run = open_run(run_dir)
    path = Path(out) if out is not None else run.path / "ticket.safetensors"
    if path.suffix not in EXTENSIONS:
        raise RunError(f"--out {path}: the file name must end in {' or '.join(EXTENSIONS)}")
    if path.is_dir():
        raise RunError(f"--out {path} is a folder; give a file name ending in {' or '.join(EXTENSIONS)}")
    tensors = ticket_file_dict(run)
    values = {k: v for k, v in tensors.items() if not k.startswith(MASK_PREFIX)}
    note = check_loads(run, values)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            from safetensors.torch import save

            data = save(tensors, metadata=metadata(run))
            atomic_write(path, lambda f: f.write(data))
        else:
            import torch

            atomic_write(path, lambda f: torch.save(tensors, f))
    except OSError as e:
        raise RunError(f"cannot write {path}: {e.strerror or e}") from e
    return Exported(path, len(values), len(tensors) - len(values), [note])
