"""Units (one prunable PEFT module at one place of one layer), the `--space` syntax, and
configurations (sets of units).

Space syntax: one entry per family, `KIND-SIZE[:TARGETS]`. TARGETS is a comma-separated list;
each target gives one unit per layer, and `+` joins sites into one unit:

    lora-4:q,k,v,o,ffn_in,ffn_out   six LoRA r=4 units per layer, one per projection
    lora-8:q+v                      the paper's unit: one LoRA r=8 on query AND value, pruned together
    lora-8                          the same (a kind's default target)
    adapter-16                      a serial adapter of width 16 after the FFN output
    bias:q,ffn_in                   BitFit units: a kind without a size is written without one
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prunepeft.errors import UserError
from prunepeft.modules.kinds import KINDS, get_kind, parse_target

__all__ = ["KINDS", "Unit", "parse_space", "everywhere", "save_configuration", "load_configuration"]


@dataclass(frozen=True, order=True)
class Unit:
    """One prunable module. Field order (layer, kind, size, target) is the deterministic tie-break order."""

    layer: int
    kind: str
    size: int
    target: str = ""  # '+'-joined targets; "" means the kind's default

    def __post_init__(self):
        kind = get_kind(self.kind)
        object.__setattr__(self, "target", parse_target(kind, self.target))
        if not kind.sized and int(self.size) != 1:
            raise UserError(f"{self.kind} units have no size; write {self.kind}[:TARGETS] (size 1 internally), got size {self.size}")
        if int(self.size) <= 0:
            raise UserError(f"unit size must be a positive {kind.size_word}, got {self.size} for {self.kind}; "
                            "use e.g. 8 for a LoRA rank or 32 for an adapter width")
        if int(self.layer) < 0:
            raise UserError(f"unit layer must be >= 0, got {self.layer}")

    @property
    def family(self) -> str:
        """Kind and size, e.g. 'lora-8' ('bias' for a kind without a size): units of one family share
        one scale and a partition column."""
        return f"{self.kind}-{self.size}" if get_kind(self.kind).sized else self.kind

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(self.target.split("+"))

    @property
    def key(self) -> str:
        """Unique within one layer: 'lora-8:q+v' (the target is left out where it is the kind's default)."""
        return self.family if self.target == get_kind(self.kind).default_target else f"{self.family}:{self.target}"

    @property
    def name(self) -> str:
        return f"{self.key}@{self.layer}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "size": self.size, "target": self.target}

    @classmethod
    def from_dict(cls, d: dict) -> Unit:
        try:
            return cls(layer=int(d["layer"]), kind=str(d["kind"]), size=int(d["size"]), target=str(d.get("target") or ""))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"bad unit {d!r} in configuration: each unit needs integer 'layer', "
                            f"string 'kind', integer 'size' and optionally 'target' ({e})") from None

    @classmethod
    def parse(cls, name: str) -> Unit:
        """Inverse of `name`: 'lora-8:q@3' -> Unit(3, 'lora', 8, 'q')."""
        try:
            key, layer = name.rsplit("@", 1)
            family, _, target = key.partition(":")
            kind, size = split_family(family)
            return cls(layer=int(layer), kind=kind, size=int(size), target=target)
        except ValueError:
            raise UserError(f"bad unit name {name!r}: the form is kind-size[:target]@layer, e.g. lora-8:q@3") from None


def split_family(family: str) -> tuple[str, str]:
    """'lora-8' -> ('lora', '8'); 'bias' (a kind without a size) -> ('bias', '1'); else ('', family)."""
    if family in KINDS and not KINDS[family].sized:
        return family, "1"
    kind, sep, size = family.rpartition("-")
    return (kind, size) if sep and kind in KINDS and KINDS[kind].sized else ("", family)


def parse_space_entry(text: str, flag: str = "--space") -> list[tuple[str, int, str]]:
    """'lora-4:q,k' -> [('lora', 4, 'q'), ('lora', 4, 'k')] (kind, size, target per unit of a layer)."""
    family, _, targets = str(text).strip().partition(":")
    kind, size = split_family(family)
    if not kind and family in KINDS:
        raise UserError(f"{flag} entry {text!r}: {family} needs a {KINDS[family].size_word}, e.g. {family}-8")
    named = family.rpartition("-")[0] or family  # the kind the entry names, without its size
    if not kind and named in KINDS:
        raise UserError(f"{flag} entry {text!r}: {named} units have no size; write e.g. {named}:q,ffn_in")
    if not kind:
        unsized = ", ".join(k for k in KINDS if not KINDS[k].sized)
        raise UserError(f"{flag} entry {text!r}: unknown unit kind {named!r}; an entry is KIND-SIZE[:TARGETS] "
                        f"with KIND in {', '.join(KINDS)} ({unsized} without a size), e.g. lora-4:q,k,v,o,ffn_in,ffn_out, "
                        "adapter-16 or bias:q,ffn_in")
    try:
        value = int(size)
    except ValueError:
        raise UserError(f"{flag} entry {text!r}: size {size!r} is not an integer") from None
    parts = [t.strip() for t in targets.split(",")] if targets else [""]
    if targets and not all(parts):
        raise UserError(f"{flag} entry {text!r} has an empty target; list targets like q,k,v")
    return [(kind, value, Unit(0, kind, value, t).target) for t in parts]


def parse_space(entries, flag: str = "--space") -> list[tuple[str, int, str]]:
    """All (kind, size, target) of a --space (or --floor) list; the same unit named twice is an error."""
    out = [item for entry in entries for item in parse_space_entry(entry, flag)]
    seen = set()
    for item in out:
        if item in seen:
            raise UserError(f"{flag} names {Unit(0, *item).key} twice; list each kind-size:target once")
        seen.add(item)
    if not out:
        raise UserError(f"{flag} is empty; give at least one entry such as lora-4:q,v")
    return out


def everywhere(kind: str, size: int, num_layers: int, target: str = "") -> list[Unit]:
    return [Unit(layer, kind, size, target) for layer in range(num_layers)]


def search_space(entries, num_layers: int, flag: str = "--space") -> list[Unit]:
    """Every unit of a --space (or --floor) list in every layer, in the search's (sorted) order."""
    return sorted(u for kind, size, target in parse_space(entries, flag) for u in everywhere(kind, size, num_layers, target))


def save_configuration(units, path: Path, extra: dict | None = None) -> None:
    from prunepeft.io import write_json

    payload = {"units": [u.to_dict() for u in sorted(units)]}
    payload.update(extra or {})
    write_json(path, payload)


def load_configuration(path: str | Path, allow_empty: bool = False) -> list[Unit]:
    """The units of a configuration file (or a run folder). `allow_empty` admits the no-unit
    configuration a full fine-tune writes; a configuration to train needs at least one unit."""
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
        raise UserError(f"{path}: 'units' must be a list of {{kind, layer, size, target}} objects")
    if not units and not allow_empty:
        raise UserError(f"{path} has an empty 'units' list; a configuration needs at least one unit")
    return sorted({Unit.from_dict(u) for u in units})
