"""Compiled meta-gradients on disk: one shared library per graph, loaded without a compiler.

A library is Inductor's ahead-of-time output (AOTInductor): the whole graph's kernels and the
C++ code that calls them, run by torch's own C++ runner. Loading one takes about a
millisecond and needs neither Inductor (about 3 s to import) nor tracing (about 1 s), so a
run whose graph is here pays nothing to use it; the first run of a graph pays its compile
(tens of seconds on a 2-core CPU) once per machine.

An entry's name hashes everything that determines the library: the graph's own key (the
plan's part and the shapes of its inputs, from engine.compiled), the source of mtdsl's
engine and compiled layer graph (the operators it is traced from), torch's version, the
device type, the CPU's vector instructions and the thread count (Inductor builds its loops
for the threads it is given).
So a changed mtdsl or torch, another machine sharing the folder, or a run with other threads
never picks up a library that was not built for it. Each entry is written to a temporary
name and renamed into place, the description last, so a crash never leaves a half-written
entry, and processes that want the same entry at once build it once (`building`); a damaged
library is caught when loading, or by the check against the eager engine that every first
use of a graph makes (engine.compiled).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from mtdsl.data.locate import USER_FOLDER

# $MTDSL_COMPILED, else ~/.cache/mtdsl/compiled.
FOLDER_ENV = "MTDSL_COMPILED"
# Bump when an entry's files or description change.
FORMAT = 1

Run = Callable[[list[Tensor]], list[Tensor]]


def folder() -> Path:
    explicit = os.environ.get(FOLDER_ENV)
    return Path(explicit or Path(USER_FOLDER) / "compiled").expanduser().absolute()


def entry_name(graph_key: tuple, device: torch.device) -> str:
    """The name of the entry that holds the library of `graph_key` for this process."""
    about = (FORMAT, graph_key, _source_digest(), torch.__version__, device.type,
             torch.backends.cpu.get_cpu_capability(), platform.machine(), torch.get_num_threads())
    return hashlib.sha256(repr(about).encode()).hexdigest()[:32]


def load(name: str, device: torch.device) -> tuple[Run, list[str]] | None:
    """The library called `name` and the names of its last outputs, or None where there is
    none (a library that is there but cannot be loaded is removed and counts as none)."""
    where = folder()
    try:
        about = json.loads((where / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    library = where / f"{name}.so"
    try:
        if about.get("format") != FORMAT:
            raise ValueError(f"format {about.get('format')}")
        return _runner(library, device), list(about["outputs"])
    except Exception:  # damaged or foreign: compiled again by the caller
        with contextlib.suppress(OSError):
            (where / f"{name}.json").unlink()
            library.unlink()
        return None


@contextlib.contextmanager
def building(name: str):
    """Held while a process builds the entry `name`: another process that wants the same
    entry (a sweep's runs of one shape, started together) waits, then loads what it built,
    instead of compiling it too."""
    where = folder()
    where.mkdir(parents=True, exist_ok=True)
    with open(where / f".{name}.lock", "a") as lock:
        with contextlib.suppress(OSError):  # no flock (some network filesystems): each builds
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(name: str, graph: torch.fx.GraphModule, inputs: list[Tensor], outputs: list[str],
          device: torch.device) -> tuple[Run, list[str]]:
    """Compiles `graph` (a graph of plain operators, traced with `inputs`' shapes) into the
    entry `name`, whose last outputs are named `outputs`, and loads it as `load` does."""
    from torch._inductor import aot_compile

    where = folder()
    # Inductor writes its sources beside the library; only the library is kept.
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=where))
    try:
        options = {"aot_inductor.output_path": str(scratch / "graph.so")}
        if device.type == "cuda":  # GPU kernels are separate files unless embedded
            options["aot_inductor.embed_kernel_binary"] = True
        with torch.no_grad():
            made = aot_compile(graph, tuple(inputs), options=options)
        os.replace(made, where / f"{name}.so")
        description = scratch / "about.json"
        description.write_text(json.dumps({"format": FORMAT, "outputs": outputs,
                                           "torch": torch.__version__}))
        os.replace(description, where / f"{name}.json")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _runner(where / f"{name}.so", device), outputs


def _runner(library: Path, device: torch.device) -> Run:
    from torch._C import _aoti

    if device.type == "cuda":
        runner = _aoti.AOTIModelContainerRunnerCuda(str(library), 1, str(device))
    elif device.type == "cpu":
        runner = _aoti.AOTIModelContainerRunnerCpu(str(library), 1)
    else:
        raise ValueError(f"no compiled libraries for {device.type} devices")
    return runner.run


# The packages whose code the graph is traced from: the engine, and the compiled layer graph
# and plan it reads.
TRACED_FROM = ("engine", "compile")


@cache
def _source_digest() -> str:
    """A hash of the source the graph is traced from."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(p for part in TRACED_FROM for p in (package / part).rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
