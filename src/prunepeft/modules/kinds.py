"""The unit kinds, each defined once: where it may attach, its exact parameter count, how it is
built, and whether HF peft can express it. The supernet, the search space, the baselines and the
export all read this registry, so a new kind touches this file only (peft's lesson: one home per
method).

Targets are the places of one transformer layer a unit can attach to (found by structure in
`supernet.arch`):

| target  | Linear(s)                                                       |
|---------|-----------------------------------------------------------------|
| q, k, v | attention query, key, value projections                        |
| o       | attention output projection                                     |
| ffn_in  | FFN input projection: up, and gate where the FFN is gated (Llama) |
| ffn_out | FFN output (down) projection                                    |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from prunepeft.errors import UserError
from prunepeft.modules.adapter import ADAPTER_INITS, ParallelAdapter, SerialAdapter
from prunepeft.modules.bias import BiasDelta
from prunepeft.modules.lora import DoraDelta, LoraDelta

TARGETS = ("q", "k", "v", "o", "ffn_in", "ffn_out")


@dataclass
class UnitOptions:
    lora_alpha: float | None = field(default=None, metadata={"help": "LoRA/DoRA alpha; None means alpha = r (method.md §2)"})
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA/DoRA input"})
    adapter_init: str = field(default="near-identity", metadata={"help": "near-identity (up = 0) or paper (Eq. 5)"})
    parallel_scaling: float = field(default=4.0, metadata={"help": "output scale s of the parallel adapter (He et al. 2022)"})

    def __post_init__(self):
        if self.adapter_init not in ADAPTER_INITS:
            raise UserError(f"adapter_init must be one of {ADAPTER_INITS}, got {self.adapter_init!r}")


@dataclass(frozen=True)
class Kind:
    name: str
    size_word: str | None  # what the size means: "rank" or "width"; None: the kind has no size (written without one)
    targets: tuple[str, ...]  # where a unit of this kind may attach
    default_target: str  # a space entry without targets: the paper's unit ("q+v" for LoRA)
    # exact trainable parameters on ONE Linear: (in_features, out_features, size, hidden size) -> count
    count: Callable[[int, int, int, int], int]
    # the delta module on ONE Linear: (linear, size, options, hidden size) -> nn.Module
    build: Callable[[nn.Linear, int, UnitOptions, int], nn.Module]
    peft_dora: bool | None = None  # None: peft cannot express it; else LoraConfig(use_dora=...)
    reads_ffn_input: bool = False  # the host must capture the FFN's input (parallel adapter)
    folds_into_bias: bool = False  # a merged export adds the unit's vector to its Linear's own bias

    @property
    def peft(self) -> bool:
        return self.peft_dora is not None

    @property
    def sized(self) -> bool:
        return self.size_word is not None


def _alpha(options: UnitOptions, r: int) -> float:
    return options.lora_alpha if options.lora_alpha is not None else r


def _bottleneck(d_in: int, d_out: int, w: int) -> int:
    return d_in * w + w + w * d_out + d_out  # down (+bias), up (+bias)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("lora", "rank", TARGETS, "q+v", lambda i, o, r, h: r * (i + o),
             lambda lin, r, opt, h: LoraDelta(lin.in_features, lin.out_features, r, _alpha(opt, r), opt.lora_dropout),
             peft_dora=False),
        Kind("dora", "rank", TARGETS, "q+v", lambda i, o, r, h: r * (i + o) + o,
             lambda lin, r, opt, h: DoraDelta(lin, r, _alpha(opt, r), opt.lora_dropout), peft_dora=True),
        Kind("adapter", "width", ("ffn_out",), "ffn_out", lambda i, o, w, h: _bottleneck(o, o, w),
             lambda lin, w, opt, h: SerialAdapter(lin.out_features, lin.out_features, w, 1.0, opt.adapter_init)),
        Kind("parallel-adapter", "width", ("ffn_out",), "ffn_out", lambda i, o, w, h: _bottleneck(h, o, w),
             lambda lin, w, opt, h: ParallelAdapter(h, lin.out_features, w, opt.parallel_scaling, opt.adapter_init),
             reads_ffn_input=True),
        # BitFit on one projection (AutoPEFT's and S3Delta's cheapest unit); without targets, every bias of a layer.
        # peft has no per-module bias format.
        Kind("bias", None, TARGETS, "+".join(TARGETS), lambda i, o, s, h: o, lambda lin, s, opt, h: BiasDelta(lin.out_features),
             folds_into_bias=True),
    )
}


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise UserError(f"unknown unit kind {name!r}: prunepeft knows {', '.join(KINDS)}; "
                        "fix the kind in --space, --method or the configuration") from None


def parse_target(kind: Kind, text: str | None) -> str:
    """'q+v' -> 'q+v' (checked, sites in TARGETS order); None/'' -> the kind's default target."""
    if not text:
        return kind.default_target
    sites = [s.strip() for s in str(text).split("+")]
    bad = [s for s in sites if s not in kind.targets]
    if bad or len(set(sites)) != len(sites):
        raise UserError(f"{kind.name} cannot attach to {text!r}: its targets are {', '.join(kind.targets)} "
                        "(join several into one unit with '+', e.g. q+v)")
    return "+".join(t for t in TARGETS if t in sites)


def lora_rank_fill(counts: dict[str, int], budget: int) -> tuple[int, dict[str, int]]:
    """LoRA on every given module (name -> params per unit of rank), ranks filling the budget:
    the largest uniform rank r that fits, then +1 on modules in the given order while it fits.
    Returns (r, {module: rank}); r = 0 when even rank 1 everywhere exceeds the budget."""
    per_rank = sum(counts.values())
    r = budget // per_rank if per_rank else 0
    ranks = dict.fromkeys(counts, r)
    left = budget - r * per_rank
    for name, c in counts.items():
        if c <= left:
            ranks[name] += 1
            left -= c
    return r, ranks


def describe() -> str:
    """One line per kind for --help and the README."""
    return "; ".join(f"{k.name} ({f'size = {k.size_word}' if k.sized else 'no size'}; targets {','.join(k.targets)}; "
                     f"default {k.default_target})" for k in KINDS.values())

