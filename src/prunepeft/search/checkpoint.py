"""Search checkpoint after every round: the state (JSON) and the alive units' and head's weights."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save

from prunepeft.errors import UserError
from prunepeft.io import atomic_write_bytes, write_json

STATE = "search_state.json"
WEIGHTS = "search_weights.safetensors"


def save_checkpoint(out: Path, state: dict, supernet) -> None:
    tensors = {**supernet.unit_state_dict(), **supernet.head_state_dict()}
    atomic_write_bytes(out / WEIGHTS, save(tensors))
    write_json(out / STATE, state)  # written last: a state always has its weights


KEYS = {"round": int, "alive": list, "examples_seen": int, "stream_position": int, "warmup_seconds": float,
        "rounds_seconds": float, "pruned_rounds": list}


def _damaged(path: Path, why: str) -> UserError:
    return UserError(f"the search checkpoint {path} is damaged ({why}); --resume cannot continue from it. "
                     f"Start the search afresh without --resume (it overwrites the checkpoint)")


def load_state(out: Path) -> dict | None:
    from prunepeft.space.units import Unit

    path = out / STATE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise _damaged(path, f"not readable JSON: {e}") from None
    if not isinstance(state, dict):
        raise _damaged(path, "not a JSON object")
    for key, kind in KEYS.items():
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise _damaged(path, f"{key!r} is {value!r}")
    retry = state.get("rate_retry_scale", 1.0)  # absent in checkpoints written before the retry existed
    if isinstance(retry, bool) or not isinstance(retry, (int, float)) or not 0 < retry <= 1:
        raise _damaged(path, f"'rate_retry_scale' is {retry!r}")
    try:
        for name in state["alive"] + [n for r in state["pruned_rounds"] for n in r]:
            Unit.parse(name)
    except (UserError, TypeError, ValueError) as e:
        raise _damaged(path, f"a unit name is wrong: {e}") from None
    return state


def restore_weights(out: Path, supernet) -> None:
    path = out / WEIGHTS
    try:
        tensors = load_file(str(path))
        supernet.load_unit_state_dict(tensors)
        supernet.load_head_state_dict(tensors)
    except Exception as e:  # safetensors' own error type, or keys/shapes that do not match the state
        raise _damaged(path, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None
