"""Atomic writes (a file appears complete or not at all, with the permissions the user's umask
gives) and where prunepeft caches what it builds.

Under several processes (torchrun, accelerate launch) only the main process writes or removes
files: every process runs the same command, and one run folder must come out of it. The others
skip the call (distributed.py); where they need a file the main process writes, they wait for it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from prunepeft.distributed import is_main_process


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    if not is_main_process():
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would follow the umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def finite(obj):
    """obj with every NaN/inf float replaced by None: JSON has no NaN, and a bare NaN breaks strict readers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    return json.dumps(finite(obj), default=str, allow_nan=False, **kwargs)


def write_json(path: str | Path, obj) -> None:
    atomic_write_bytes(path, (dumps(obj, indent=2) + "\n").encode())


def append_jsonl(path: str | Path, obj) -> None:
    """Append one line; the line is written with a single write call and flushed."""
    if not is_main_process():
        return
    with open(path, "a") as f:
        f.write(dumps(obj) + "\n")
        f.flush()
        os.fsync(f.fileno())


def remove(path: str | Path) -> None:
    """Delete a file if it exists (main process only, like every write)."""
    if is_main_process():
        Path(path).unlink(missing_ok=True)


def cache_root() -> Path:
    """Env PRUNEPEFT_CACHE, else ~/.cache/prunepeft (built data sets, converted models)."""
    env = os.environ.get("PRUNEPEFT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prunepeft"
