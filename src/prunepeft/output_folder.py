"""A run folder says whether its run finished. While a command works, the folder holds a file
INCOMPLETE; it is removed when the command ends well, and kept, with the reason, when it stops
on an error or Ctrl-C, so `report`, `export` and `load` refuse a half-written run. A command
that fails before producing anything leaves no trace at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from prunepeft.distributed import is_main_process
from prunepeft.errors import UserError
from prunepeft.io import atomic_write_bytes, remove

MARKER = "INCOMPLETE"
# files written at the start that hold no result: a run that fails with only these is erased
NO_RESULT = {MARKER, "config.json"}


def check_output_dir(path: str | Path) -> Path:
    """Fail before any work if the output folder cannot be written; create nothing yet."""
    out = Path(path)
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write to output directory {out}: {existing} is a file; choose another --output-dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to output directory {out}: {existing} is not writable; choose a writable --output-dir")
    return out


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.is_dir() else set()


@contextlib.contextmanager
def run_folder(out: Path, command: str):
    """Create `out` (if needed) and mark it incomplete for the duration of `command`. The main
    process owns the folder; the other processes of a multi-process run leave it alone."""
    if not is_main_process():
        yield out
        return
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write to output directory {out}: {e.strerror}; choose a writable --output-dir") from None
    before = _files(out)
    marker = out / MARKER
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    atomic_write_bytes(marker, f"`prunepeft {command}` started {started} and has not finished.\n".encode())
    try:
        yield out
    except BaseException as e:
        added = _files(out) - before
        if added <= NO_RESULT:  # nothing came of it: leave the folder as it was
            for name in added:
                (out / name).unlink(missing_ok=True)
            if created:
                shutil.rmtree(out, ignore_errors=True)
        else:
            reason = "interrupted (Ctrl-C)" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
            atomic_write_bytes(marker, f"`prunepeft {command}` started {started} and stopped: {reason}\n".encode())
        raise
    remove(marker)


def check_finished(run_dir: Path, action: str) -> None:
    """UserError if `run_dir` holds a run that did not finish."""
    marker = Path(run_dir) / MARKER
    if marker.is_file():
        why = marker.read_text().strip()
        raise UserError(f"{run_dir} holds a run that did not finish ({why}); cannot {action} it. "
                        "Rerun the command into this folder (a search continues with --resume)")
