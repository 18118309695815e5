"""The 4 'spindle' blocks at 20/50/80% of depth (Chen et al. 2023) and partitions (family, block)."""

from __future__ import annotations

import math

BLOCK_CUTS = (0.2, 0.5, 0.8)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def block_of_layer(layer: int, num_layers: int) -> int:
    """Block index 0..3. Cuts are round(frac * L): 24 layers -> 0-4 | 5-11 | 12-18 | 19-23."""
    cuts = [_round_half_up(f * num_layers) for f in BLOCK_CUTS]
    return sum(layer >= c for c in cuts)


def block_ranges(num_layers: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) layer of each non-empty block."""
    blocks: dict[int, list[int]] = {}
    for layer in range(num_layers):
        blocks.setdefault(block_of_layer(layer, num_layers), []).append(layer)
    return [(ls[0], ls[-1]) for _, ls in sorted(blocks.items())]


def partition_of(unit, num_layers: int, use_blocks: bool = True) -> str:
    """Partition label 'lora-8/b1'; without blocks (hybrid-global) one partition per family."""
    if not use_blocks:
        return f"{unit.family}/all"
    return f"{unit.family}/b{block_of_layer(unit.layer, num_layers)}"
