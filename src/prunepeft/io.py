"""Atomic writes (a file appears complete or not at all) and where prunepeft caches what it builds."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def append_jsonl(path: str | Path, obj) -> None:
    """Append one line; the line is written with a single write call and flushed."""
    with open(path, "a") as f:
        f.write(json.dumps(obj, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def cache_root() -> Path:
    """Env PRUNEPEFT_CACHE, else ~/.cache/prunepeft (built data sets, converted models)."""
    env = os.environ.get("PRUNEPEFT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prunepeft"
