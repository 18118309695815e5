"""Units (one prunable PEFT module at one layer) and configurations (sets of units)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prunepeft.errors import UserError

KINDS = ("lora", "dora", "adapter", "parallel-adapter")


@dataclass(frozen=True, order=True)
class Unit:
    """One prunable module. Field order (layer, kind, size) is the deterministic tie-break order."""

    layer: int
    kind: str
    size: int

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(
                f"unknown unit kind {self.kind!r}: prunepeft knows {', '.join(KINDS)}; "
                "fix the 'kind' in the configuration or the --kinds flag"
            )
        if int(self.size) <= 0:
            raise UserError(
                f"unit size must be a positive rank or bottleneck width, got {self.size} "
                f"for {self.kind}; use e.g. 8 for LoRA rank or 32 for an adapter width"
            )
        if int(self.layer) < 0:
            raise UserError(f"unit layer must be >= 0, got {self.layer}")

    @property
    def family(self) -> str:
        """Kind and size, e.g. 'lora-8': units of one family share a partition column."""
        return f"{self.kind}-{self.size}"

    @property
    def name(self) -> str:
        return f"{self.family}@{self.layer}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> Unit:
        try:
            return cls(layer=int(d["layer"]), kind=str(d["kind"]), size=int(d["size"]))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(
                f"bad unit {d!r} in configuration: each unit needs integer 'layer', "
                f"string 'kind' and integer 'size' ({e})"
            ) from None

    @classmethod
    def parse(cls, name: str) -> Unit:
        """Inverse of `name`: 'lora-8@3' -> Unit(3, 'lora', 8)."""
        try:
            family, layer = name.rsplit("@", 1)
            kind, size = family.rsplit("-", 1)
            return cls(layer=int(layer), kind=kind, size=int(size))
        except ValueError:
            raise UserError(f"bad unit name {name!r}: the form is kind-size@layer, e.g. lora-8@3") from None


def save_configuration(units, path: Path, extra: dict | None = None) -> None:
    from prunepeft.io import write_json

    payload = {"units": [u.to_dict() for u in sorted(units)]}
    payload.update(extra or {})
    write_json(path, payload)


def load_configuration(path: str | Path) -> list[Unit]:
    path = Path(path)
    if path.is_dir():
        path = path / "configuration.json"
    if not path.is_file():
        raise UserError(f"configuration file {path} does not exist; pass a configuration.json written by a run")
    try:
        payload = json.loads(path.read_text())
        units = payload["units"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a prunepeft configuration (a JSON object with a 'units' list): {e}") from None
    if not isinstance(units, list):
        raise UserError(f"{path}: 'units' must be a list of {{kind, layer, size}} objects")
    if not units:
        raise UserError(f"{path} has an empty 'units' list; a configuration needs at least one unit")
    return sorted({Unit.from_dict(u) for u in units})
