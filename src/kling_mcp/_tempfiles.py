"""New files written beside their final name and renamed into place."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def temporary_beside(folder: Path, name: str) -> tuple[Path, int]:
    """A new hidden file in ``folder``, opened for writing. Unlike mkstemp's 0600, its mode follows
    the umask, as any file the user saves would (and without touching the process's umask)."""
    while True:
        path = folder / f".{name}.{secrets.token_hex(4)}.part"
        try:
            return path, os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
