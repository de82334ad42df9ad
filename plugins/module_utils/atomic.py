"""One atomic write for the collection's modules: a temporary file in the target's folder, owned, moded and checked
before it replaces the target, so a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def write_atomic(path: str, data: bytes, mode: int = 0o644, uid: int = -1, gid: int = -1,
                 check: Callable[[str], None] | None = None, make_folder: bool = False) -> None:
    """data at path: the temporary file gets mode, owner (-1 keeps the caller's) and check(tmp) (which raises to
    refuse it) first; on any failure it is removed and the old file stays."""
    folder = os.path.dirname(path) or "."
    if make_folder:
        os.makedirs(folder, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
