"""LoRA and DoRA deltas, numerically the same as HF peft's for the same weights.

A delta module sits inside a `UnitHost` next to the frozen Linear and returns what it adds
to that Linear's output. Parameter names (lora_A, lora_B, magnitude) map 1:1 onto peft's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LoraDelta(nn.Module):
    """delta = B(A(dropout(x))) * alpha / r, with A kaiming-uniform and B zero (peft's init)."""

    def __init__(self, in_features: int, out_features: int, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r
        self.lora_A = nn.Linear(in_features, r, bias=False)
        self.lora_B = nn.Linear(r, out_features, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self, base: nn.Linear | None = None) -> None:
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor, base_out: torch.Tensor, base: nn.Linear) -> torch.Tensor:
        return self.lora_B(self.lora_A(self.dropout(x))) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling


class DoraDelta(LoraDelta):
    """Weight-decomposed LoRA (Liu et al. 2024) written as an additive delta, as peft computes it:
    (m / ||W + sBA|| - 1) * W x + m / ||W + sBA|| * s * B A x, with the norm detached."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__(base.in_features, base.out_features, r, alpha, dropout)
        self.magnitude = nn.Parameter(torch.empty(base.out_features))
        self.reset_parameters(base)

    def reset_parameters(self, base: nn.Linear | None = None) -> None:
        super().reset_parameters()
        if base is not None and hasattr(self, "magnitude"):
            with torch.no_grad():
                self.magnitude.copy_(self._weight_norm(base.weight))

    def _weight_norm(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.linalg.norm(weight + self.delta_weight().detach(), dim=1)

    def forward(self, x: torch.Tensor, base_out: torch.Tensor, base: nn.Linear) -> torch.Tensor:
        scale = (self.magnitude / self._weight_norm(base.weight).detach()).view(1, -1)
        dropped = self.dropout(x)
        if dropped is x:
            wx = base_out if base.bias is None else base_out - base.bias
        else:
            wx = F.linear(dropped, base.weight)
        return (scale - 1) * wx + scale * self.lora_B(self.lora_A(dropped)) * self.scaling
