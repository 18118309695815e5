"""A bias unit (BitFit, Ben Zaken et al. 2022, on one projection): a trainable vector added to
one frozen Linear's output, starting at 0 so a fresh unit leaves the pretrained model unchanged."""

from __future__ import annotations

import torch
from torch import nn


class BiasDelta(nn.Module):
    def __init__(self, out_features: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(out_features))

    def reset_parameters(self, base: nn.Linear | None = None) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, base_out: torch.Tensor, base: nn.Linear) -> torch.Tensor:
        return self.bias.to(base_out.dtype).expand_as(base_out)  # full shape: the statistics read it per token

    def delta_bias(self) -> torch.Tensor:
        return self.bias.detach()
