"""UnitHost: a frozen Linear plus the PEFT deltas currently attached to it.

When the last unit leaves, the supernet puts the bare Linear back, so a removed unit leaves no
parameter, hook or compute behind.
"""

from __future__ import annotations

import torch
from torch import nn

from prunepeft.modules.adapter import ParallelAdapter


class UnitHost(nn.Module):
    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base
        self.deltas = nn.ModuleDict()
        self.ffn_input: torch.Tensor | None = None  # set by a pre-hook when a parallel adapter lives here
        self.recorder = None  # callable(key, delta) when statistics are collected

    # Expose the wrapped Linear's attributes that model code reads (e.g. weight.dtype).
    @property
    def weight(self):
        return self.base.weight

    @property
    def bias(self):
        return self.base.bias

    @property
    def in_features(self):
        return self.base.in_features

    @property
    def out_features(self):
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base_out = self.base(x)
        out = base_out
        for key, delta_module in self.deltas.items():
            if isinstance(delta_module, ParallelAdapter):
                delta = delta_module(x, base_out, self.base, self.ffn_input)
            else:
                delta = delta_module(x, base_out, self.base)
            if self.recorder is not None:
                self.recorder(self, key, delta)
            out = out + delta
        self.ffn_input = None
        return out
