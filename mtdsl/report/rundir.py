"""The run folder: the one owner of every file a run leaves behind — their names, the keys
inside checkpoint.pt and final.pt, the writer (`RunDir`) and the reader (`open_run`).

Layout of `runs/<experiment>/<timestamp>/` (or the folder given with `--out`):
  spec.mt, spec.sha256   the operative spec exactly as run, and its hash (`sha256sum -c` format)
  resolved.json          the resolved spec, parameter table (names, shapes, roles), seed,
                         source, overrides, device, versions, world size and backend
  metrics.jsonl          one JSON object per line, appended during training
  checkpoint.pt          everything a run needs to continue (`Checkpoint`)
  final.pt               the finished run's tensors (`FinalTensors`), saved on the CPU
  result.json            the final result (schema in mtdsl/report/result.py); written last,
                         so a folder holding it is a finished run
  run.lock               while a run writes the folder: its PID and host (report/lock.py)

Whole files are replaced atomically (temp file in the same folder, fsync, os.replace), so a
reader sees the old file or the new one, never half of one. metrics.jsonl is appended and
flushed line by line, so a killed process loses no line it had already appended.
Nothing here imports torch at module level, so tables over runs stay fast.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from mtdsl.errors import RunError
from mtdsl.report.lock import LOCK, RunLock

TIMESTAMP_FORMAT = "%Y-%m-%dT%H-%M-%S"

# The files of a run folder.
SPEC = "spec.mt"
SPEC_SHA256 = "spec.sha256"
RESOLVED = "resolved.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
FINAL = "final.pt"
RESULT = "result.json"
OUTPUT_LOG = "output.log"  # a worker's console output (runs executed away from the terminal)


@dataclass
class Checkpoint:
    """checkpoint.pt: everything a run needs to continue exactly where it stopped. Saved as
    a dict whose keys are these field names; every rank of a distributed run holds the same
    state, so a checkpoint written under N processes resumes under any other number."""

    spec_sha256: str
    learner: dict  # MetaLearner.state_dict()
    train_rng: Any  # the training-task generator's state
    torch_rng: Any  # torch's global generator (dropout draws from it)
    best: tuple | None  # (validation value, learner state) when eval.checkpoint is "best"
    elapsed: float  # seconds of training before this checkpoint

    def to_file(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_file(cls, state: dict) -> Checkpoint:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})


# final.pt is one flat dict of tensors; a key's prefix says which group the tensor is in.
WEIGHTS = "weights/"  # drawn weights of masked tensors, values of fixed ones
LEARNED = "learned/"  # meta-learned values, and "<param>:score" for a masked tensor's scores
MASKS = "masks/"  # the hard mask of each masked tensor


@dataclass
class FinalTensors:
    """final.pt: the finished run's tensors in the engine's vocabulary (engine/inner.py)."""

    weights: dict = field(default_factory=dict)
    learned: dict = field(default_factory=dict)
    masks: dict = field(default_factory=dict)

    def to_file(self) -> dict:
        return {**{WEIGHTS + k: v for k, v in self.weights.items()},
                **{LEARNED + k: v for k, v in self.learned.items()},
                **{MASKS + k: v for k, v in self.masks.items()}}

    @classmethod
    def from_file(cls, tensors: Mapping[str, Any]) -> FinalTensors:
        groups = cls()
        for key, tensor in tensors.items():
            for prefix, group in ((WEIGHTS, groups.weights), (LEARNED, groups.learned), (MASKS, groups.masks)):
                if key.startswith(prefix):
                    group[key.removeprefix(prefix)] = tensor
        return groups


def finite_json(obj: Any) -> Any:
    """Copy `obj` with every NaN or infinite float replaced by None (JSON null).

    Strict JSON has no NaN/Infinity; a diverged loss is recorded as null instead of making
    the file unreadable to other tools. Tuples become lists; other values are left alone.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {key: finite_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(value) for value in obj]
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    """JSON text of `obj`: finite floats only (see finite_json), keys in insertion order."""
    return json.dumps(finite_json(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def atomic_write(path: Path, write) -> None:
    """Create or replace `path` by calling `write(binary_file)` on a temp file beside it."""
    temp_name = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open with 0o666 (not tempfile.mkstemp's 0o600) so the result gets the umask's usual
    # permissions and stays readable by whoever reads the other files of the run.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(temp_name, flags, 0o666)
    except OSError as e:
        raise WriteError(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            stream = _KeepingErrors(f)
            try:
                write(stream)
            except Exception:
                if stream.error is None:
                    raise
                raise WriteError(path, stream.error) from None  # torch.save hides the cause
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except OSError as e:  # disk full, file-size limit, permissions: the old file stays
        _remove(temp_name)
        raise WriteError(path, e) from None
    except BaseException:
        _remove(temp_name)
        raise
    _fsync_dir(path.parent)


class WriteError(RunError):
    """A file of the run folder could not be written (disk full, no permission); the file
    it would have replaced is untouched."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(f"cannot write {path}: {error.strerror or error}")
        self.path, self.error = path, error


class _KeepingErrors:
    """A binary file that keeps the first OSError of its writes."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


def _remove(name) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def _fsync_dir(folder: Path) -> None:
    # The rename itself lives in the directory entry; without this a power loss can undo it.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_plain_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"not a plain file name: {name!r}")


def _file_name(name: str, extension: str) -> str:
    _check_plain_name(name)
    return name if name.endswith(extension) else name + extension


class RunDir:
    """One run's output folder. Use `RunDir.create(...)`; close it (or use `with`) at the end."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._metrics = None

    @classmethod
    def create(
        cls,
        experiment: str,
        root: str | Path = "runs",
        out: str | Path | None = None,
        now: datetime | None = None,
    ) -> RunDir:
        """Make `out`, or else a new `<root>/<experiment>/<timestamp>[_N]/` folder.

        `out` may exist only if empty, so a run never mixes its files with an older run's.
        The timestamp folder gets a `_2`, `_3`... suffix when two runs start in one second.
        """
        if out is not None:
            return cls(_prepare_out(Path(out)))
        _check_plain_name(experiment)
        parent = Path(root) / experiment
        stamp = (now or datetime.now()).strftime(TIMESTAMP_FORMAT)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(1, 10_000):
                path = parent / (stamp if attempt == 1 else f"{stamp}_{attempt}")
                try:
                    # mkdir without exist_ok is the atomic claim: two runs never share a folder.
                    path.mkdir()
                    return cls(path)
                except FileExistsError:
                    continue
        except OSError as e:
            raise RunError(f"cannot create the run folder under {parent}: {e.strerror or e}") from e
        raise RunError(f"too many runs named {stamp} in {parent}; remove some or pass --out")

    def write_spec(self, text: str, sha256: str) -> None:
        """Write spec.mt (bytes of `text` in UTF-8, newlines untouched) and spec.sha256."""
        atomic_write(self.path / SPEC, lambda f: f.write(text.encode("utf-8")))
        line = f"{sha256}  {SPEC}\n"
        atomic_write(self.path / SPEC_SHA256, lambda f: f.write(line.encode("ascii")))

    def write_json(self, name: str, obj: Any) -> Path:
        """Write `<name>.json` atomically (indent 2, NaN/inf as null); return its path."""
        path = self.path / _file_name(name, ".json")
        text = dumps(obj) + "\n"
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        return path

    def write_result(self, result: Mapping[str, Any]) -> Path:
        """Write result.json (see mtdsl.report.result.build_result for the schema)."""
        return self.write_json(RESULT, result)

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        """Append one record as one line of metrics.jsonl and flush it to the OS.

        Flushed, not fsynced: a crashed or killed process loses nothing, and the training
        loop does not wait on the disk (only a power loss could drop the last lines).
        """
        try:
            if self._metrics is None:
                self._metrics = open(self.path / METRICS, "a", encoding="utf-8")
            self._metrics.write(dumps(record, indent=None) + "\n")
            self._metrics.flush()
        except OSError as e:  # a line cut short here is dropped on resume (keep_metrics_until)
            raise WriteError(self.path / METRICS, e) from None

    def save_tensors(self, name: str, tensors: Mapping[str, Any]) -> Path:
        """torch.save a dict of tensors to `<name>.pt` atomically, as compact CPU copies.

        CPU so the file loads on a machine without the training GPU; cloned so a tensor that
        is a view does not drag its whole underlying storage into the file.
        """
        import torch  # here, not at the top: the rest of the report stage must not need torch

        path = self.path / _file_name(name, ".pt")
        cpu = {key: t.detach().to("cpu").clone() for key, t in tensors.items()}
        atomic_write(path, lambda f: torch.save(cpu, f))
        return path

    def save_checkpoint(self, checkpoint: Checkpoint) -> Path:
        import torch

        path = self.path / CHECKPOINT
        atomic_write(path, lambda f: torch.save(checkpoint.to_file(), f))
        return path

    def save_final(self, final: FinalTensors) -> Path:
        return self.save_tensors(FINAL, final.to_file())

    def prepare(self, sha256: str) -> Checkpoint | None:
        """Make the folder ready for a run of the spec with hash `sha256`: the checkpoint to
        continue from, or None for a fresh start (an empty or new folder, or one whose run
        was killed before its first checkpoint, whose metrics are then dropped)."""
        if not self.path.exists() or not any(f.name != LOCK for f in self.path.iterdir()):
            self.path.mkdir(parents=True, exist_ok=True)
            return None
        recorded = Run(self.path).recorded_sha256()
        if recorded != sha256:
            raise RunError(f"{self.path} holds a run of a different spec (sha256 {str(recorded)[:12]}..., "
                           f"this one {sha256[:12]}...); give a new folder with --out")
        checkpoint = Run(self.path).checkpoint()
        if checkpoint is None:
            (self.path / METRICS).unlink(missing_ok=True)
        return checkpoint

    def lock(self) -> RunLock:
        """Hold the folder (made if missing) for this process: a second run into it is
        refused while this one lives (report/lock.py). Release the lock when done."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunError(f"cannot create the run folder {self.path}: {e.strerror or e}") from None
        return RunLock(self.path).acquire()

    def keep_metrics_until(self, iteration: int) -> None:
        """Drop metric lines written after the checkpoint: the resumed run writes them again."""
        path = self.path / METRICS
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by the kill
                continue
            if record.get("iteration", 0) <= iteration:
                kept.append(line)
        atomic_write(path, lambda f: f.write(("\n".join(kept) + "\n" if kept else "").encode()))

    def close(self) -> None:
        if self._metrics is not None:
            try:
                self._metrics.close()
            except OSError:  # its failed write was reported already
                pass
            self._metrics = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _prepare_out(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} is a file, not a folder; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        raise RunError(
            f"--out {path} already holds files; give a new or empty folder so this run's "
            "results are not mixed with another's"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create --out {path}: {e.strerror or e}") from e
    return path


# -- reading ---------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RunError(f"cannot read {path}: {e.strerror or e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is not valid JSON ({e}); was it edited or cut short?") from e


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl, in order; [] when the file does not exist.

    A last line cut short (a crash while writing it) is dropped; a bad line elsewhere is
    an error, since it means the file was damaged rather than interrupted.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):
                break
            raise RunError(f"{path}:{number} is not a JSON record ({e})") from e
    return records


MISSING = object()


def lookup(document: Any, dotted: str) -> Any:
    """`document["a"]["b"]` for "a.b"; MISSING when some part is absent."""
    node = document
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node



@dataclass
class Run:
    """A run folder as `open_run` found it: result.json when finished, resolved.json when the
    run wrote one; the other files are read when asked for."""

    path: Path
    result: dict | None = None
    resolved: dict | None = None
    _metrics: list[dict] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def experiment(self) -> str:
        return str((self.result or self.resolved or {}).get("experiment", self.path.name))

    @property
    def seed(self) -> int | None:
        return (self.result or self.resolved or {}).get("seed")

    @property
    def spec_file(self) -> Path:
        return self.path / SPEC

    def recorded_sha256(self) -> str | None:
        path = self.path / SPEC_SHA256
        return path.read_text().split()[0] if path.exists() else None

    def field(self, dotted: str) -> Any:
        """A resolved-spec field ("model.width"), else a key of resolved.json itself
        ("device", "torch"); MISSING when neither has it."""
        if self.resolved is None:
            return MISSING
        value = lookup(self.resolved.get("spec", {}), dotted)
        return lookup(self.resolved, dotted) if value is MISSING else value

    def metrics(self) -> list[dict]:
        """Every record of metrics.jsonl (training steps and validation lines), read once."""
        if self._metrics is None:
            self._metrics = read_metrics(self.path / METRICS)
        return self._metrics

    def training_records(self) -> list[dict]:
        return [r for r in self.metrics() if "valid" not in r]

    def parameters(self) -> list[dict]:
        """resolved.json's parameter table: name, shape, role, inner_lr, init per tensor."""
        return list((self.resolved or {}).get("parameters", []))

    def roles(self) -> dict[str, str]:
        """Parameter name -> masked, meta or fixed, in model order, as resolved.json records."""
        return {p["name"]: p["role"] for p in self.parameters()}

    def checkpoint(self) -> Checkpoint | None:
        import torch

        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        try:
            return Checkpoint.from_file(torch.load(path, map_location="cpu", weights_only=False))
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
            # torch's first sentence says what; its advice that follows is about other files
            reason = str(e).strip().split("\n")[0].split(". ")[0].rstrip(".") or type(e).__name__
            raise RunError(f"{path} cannot be read ({reason}): it was cut short or damaged, and the "
                           f"run cannot continue from it. To run it again from the start in the same "
                           f"folder, delete it (`rm {path}`) and then `mtdsl run --resume {self.path}`") from None

    def final(self) -> FinalTensors:
        """final.pt's tensors, grouped (see FinalTensors)."""
        import torch

        path = self.path / FINAL
        if not path.is_file():
            raise RunError(f"{self.path} has no {FINAL}; only a finished run has its tensors")
        try:
            return FinalTensors.from_file(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
            raise RunError(f"cannot read {path}: {e}") from e


def open_run(path: str | Path, *, finished: bool = True) -> Run:
    """The run in folder `path` (or whose result.json is `path`). `finished`: it must hold
    result.json (reports, figures, export, meta-test); otherwise resolved.json (resume)."""
    folder = Path(path)
    if folder.name == RESULT:
        folder = folder.parent
    if not folder.is_dir():
        raise RunError(f"{folder} is not a run folder (no such directory)")
    resolved_file, result_file = folder / RESOLVED, folder / RESULT
    resolved = read_json(resolved_file) if resolved_file.is_file() else None
    if not finished:
        if resolved is None:
            raise RunError(f"{folder} is not a run folder (no {RESOLVED}); give the folder a run wrote")
        return Run(folder, read_json(result_file) if result_file.is_file() else None, resolved)
    if not result_file.is_file():
        why = ("the run has not finished, or was stopped; finish it with `mtdsl run --resume`"
               if resolved is not None else "it is not a run folder written by `mtdsl run`")
        raise RunError(f"{folder} has no {RESULT}: {why}")
    result = read_json(result_file)
    if not isinstance(result, dict) or not isinstance(result.get("test"), dict):
        raise RunError(f"{result_file} is not a result of `mtdsl run` (no `test` section)")
    return Run(folder, result, resolved)
