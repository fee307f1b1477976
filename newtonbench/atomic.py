"""Atomic file writes: write to a temporary name beside the target, then rename.

A crash (or Ctrl-C) mid-write leaves no partial file under the final name; `os.replace` is atomic
on POSIX when source and target share a file system, which a sibling temp file guarantees.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    The temp name keeps the target's suffix (PyAV and pyarrow pick formats by extension).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        # (0666 less the umask), so datasets and published sites are readable by others.
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete temp files left by a killed run (names start with '.' and contain a random infix)."""
    n = 0
    for p in Path(folder).rglob(".*.*"):
        if p.is_file():
            p.unlink()
            n += 1
    return n
