"""Search checkpoint after every round: the state (JSON) and the alive units' and head's weights."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save

from prunepeft.io import atomic_write_bytes, write_json

STATE = "search_state.json"
WEIGHTS = "search_weights.safetensors"


def save_checkpoint(out: Path, state: dict, supernet) -> None:
    tensors = {**supernet.unit_state_dict(), **supernet.head_state_dict()}
    atomic_write_bytes(out / WEIGHTS, save(tensors))
    write_json(out / STATE, state)  # written last: a state always has its weights


def load_state(out: Path) -> dict | None:
    path = out / STATE
    return json.loads(path.read_text()) if path.is_file() else None


def restore_weights(out: Path, supernet) -> None:
    tensors = load_file(str(out / WEIGHTS))
    supernet.load_unit_state_dict(tensors)
    supernet.load_head_state_dict(tensors)
