"""A run folder's lock: one process at a time writes into a run folder.

`run.lock` in the folder names its owner (PID, host, start time, as JSON) and the owner
holds an exclusive `flock` on it while it runs. The kernel releases a flock when its process
ends, however it ends (SIGKILL, a crash, a power cut), so a lock file whose flock is free was
left by a dead process: it is taken over, with a note naming that process. The owner removes
the file when it finishes or stops.

Where flock is unavailable (some network filesystems), the PID in the file decides instead:
a lock of a living process on this host is respected; one of a dead process is taken over.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mtdsl.errors import RunError

try:
    import fcntl
except ImportError:  # Windows: only the PID check
    fcntl = None

LOCK = "run.lock"


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    since: str

    def describe(self) -> str:
        return f"process {self.pid} on {self.host} (since {self.since})"


class RunLock:
    """`with RunLock(folder) as lock:` holds the folder; `lock.note` says what was taken over."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self.note: str | None = None
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        for _ in range(10):  # retried only when another process replaced the file meanwhile
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise RunError(f"cannot write in the run folder {self.path.parent}: "
                               f"{e.strerror or e}; make it writable or give another folder") from None
            previous = _read(fd)
            if not _flock(fd, previous):
                os.close(fd)
                raise RunError(
                    f"{self.path.parent} is in use by {previous.describe() if previous else 'another process'}; "
                    f"wait for that run to end, or give another folder. If no such run is going on, "
                    f"delete {self.path}")
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:  # its owner removed it between our open and flock
                same = False
            if not same:
                os.close(fd)
                continue
            if previous is not None:
                self.note = (f"took over {self.path}, left by {previous.describe()}, "
                             "which is no longer running")
            try:
                _write(fd, Owner(os.getpid(), socket.gethostname(), datetime.now().isoformat(timespec="seconds")))
            except OSError as e:
                os.close(fd)
                raise RunError(f"cannot write {self.path}: {e.strerror or e}; free some space or make "
                               "the folder writable") from None
            self._fd = fd
            return self
        raise RunError(f"could not lock {self.path}: other processes keep replacing it")

    def release(self) -> None:
        if self._fd is None:
            return
        # Removed while still held, so a process waiting on this file finds it gone and retries.
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def _flock(fd: int, previous: Owner | None) -> bool:
    """Take the lock; False when a living process holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
    return previous is None or previous.host != socket.gethostname() or not _alive(previous.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(fd: int) -> Owner | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return Owner(int(data["pid"]), str(data["host"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None  # empty (just created) or unreadable: names nobody


def _write(fd: int, owner: Owner) -> None:
    data = json.dumps({"pid": owner.pid, "host": owner.host, "since": owner.since}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data + b"\n", 0)
    os.fsync(fd)
