"""Fetching a dataset with its upstream tool (torchvision, learn2learn), failing as a message.

Every loader finds its files first and downloads only when they are missing and downloads are
allowed (`locate.downloads_allowed`); the caller then looks for the files again, so a download
that "succeeded" but left an incomplete folder is still reported as missing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

# torchvision and learn2learn set no network timeout; without one a filtered network hangs.
TIMEOUT_S = 30


def find_or_fetch(name: str, root: Path, candidates: list[Path], holds: Callable[[Path], bool],
                  download: bool, fetch: Callable[[], object], fetch_into: Path) -> Path:
    """The first candidate folder that holds the dataset; else, where downloads are allowed,
    fetch it (into `fetch_into`, so that it lands in `candidates[0]`) and look again; else
    the one not-found message every dataset gives (`files.not_found`)."""
    from mtdsl.data.files import download_hint, first_holding, not_found
    from mtdsl.data.locate import downloads_allowed

    folder = first_holding(candidates, holds)
    if folder is not None:
        return folder
    allowed = downloads_allowed(download)
    failure = download_hint(allowed)
    if allowed:
        failure = attempt(fetch_into, fetch)
        if holds(candidates[0]):
            return candidates[0]
    raise not_found(name, root, candidates, failure)


def attempt(target: Path, fetch: Callable[[], object]) -> str:
    """Run fetch() with a network timeout; '' if it worked, else a line for the error message.

    Folders the attempt created and left empty are removed, so a failed download leaves no
    trace that a later search could mistake for data.
    """
    made = [p for p in (target, *target.parents) if not p.exists()]
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT_S)
    try:
        target.mkdir(parents=True, exist_ok=True)
        fetch()
        return ""
    except ImportError as error:
        return f"\nDownloading needs a package that is not installed: {error}."
    except Exception as error:  # no network, a proxy, a full disk, a moved URL: all end alike
        return f"\nDownloading into {target} failed: {type(error).__name__}: {error}"
    finally:
        socket.setdefaulttimeout(previous)
        for folder in made:
            try:
                os.rmdir(folder)
            except OSError:
                break
