"""Bottleneck adapters: serial (Pfeiffer placement) and parallel to the FFN (He et al. 2022)."""

from __future__ import annotations

import math

import torch
from torch import nn

ADAPTER_INITS = ("near-identity", "paper")


class BottleneckAdapter(nn.Module):
    """up(relu(down(h))) with biases; width is the bottleneck size.

    Init "near-identity" (default): down ~ N(0, 1/sqrt(d_in)) as paper Eq. 4, up = 0, so a fresh
    adapter starts as the identity of the pretrained model, like LoRA's B = 0. Init "paper":
    up ~ N(0, 1/sqrt(width)) as Eq. 5 literally; that starts every adapter with a large random
    perturbation, which measurably hurts a small pretrained model (see docs/method-notes.md).
    """

    def __init__(self, in_features: int, out_features: int, width: int, scaling: float = 1.0, init: str = "near-identity"):
        super().__init__()
        self.down = nn.Linear(in_features, width)
        self.up = nn.Linear(width, out_features)
        self.scaling = scaling
        self.init = init
        self.reset_parameters()

    def reset_parameters(self, base: nn.Linear | None = None) -> None:
        nn.init.normal_(self.down.weight, std=1.0 / math.sqrt(self.down.in_features))
        nn.init.zeros_(self.down.bias)
        if self.init == "paper":
            nn.init.normal_(self.up.weight, std=1.0 / math.sqrt(self.up.in_features))
        else:
            nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def adapt(self, h: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.down(h))) * self.scaling


class SerialAdapter(BottleneckAdapter):
    """Added to the FFN output before the residual/LayerNorm: H + up(relu(down(H)))."""

    def forward(self, x: torch.Tensor, base_out: torch.Tensor, base: nn.Linear) -> torch.Tensor:
        return self.adapt(base_out)


class ParallelAdapter(BottleneckAdapter):
    """Reads the FFN's input (captured by the host) and adds s * up(relu(down(x_ffn))) to its output."""

    def forward(self, x: torch.Tensor, base_out: torch.Tensor, base: nn.Linear, ffn_input: torch.Tensor | None = None) -> torch.Tensor:
        if ffn_input is None:
            raise RuntimeError("parallel adapter ran without the FFN input; the supernet hook is missing")
        return self.adapt(ffn_input)
