"""Spindle blocks at round-half-up(0.2L, 0.5L, 0.8L) and partition labels (method.md §4)."""

import pytest

from prunepeft.space.partition import block_of_layer, block_ranges, partition_of
from prunepeft.space.units import Unit

EXPECTED = {
    6: [(0, 0), (1, 2), (3, 4), (5, 5)],  # cuts 1 (1.2), 3 (3.0), 5 (4.8)
    12: [(0, 1), (2, 5), (6, 9), (10, 11)],  # cuts 2 (2.4), 6, 10 (9.6)
    24: [(0, 4), (5, 11), (12, 18), (19, 23)],  # cuts 5 (4.8), 12, 19 (19.2)
    30: [(0, 5), (6, 14), (15, 23), (24, 29)],  # cuts 6, 15, 24
}


@pytest.mark.parametrize("num_layers", sorted(EXPECTED))
def test_block_ranges(num_layers):
    assert block_ranges(num_layers) == EXPECTED[num_layers]


@pytest.mark.parametrize("num_layers", sorted(EXPECTED))
def test_block_of_layer_matches_ranges(num_layers):
    for block, (first, last) in enumerate(EXPECTED[num_layers]):
        for layer in range(first, last + 1):
            assert block_of_layer(layer, num_layers) == block


def test_blocks_are_monotone_and_cover_all_layers():
    for num_layers in (6, 12, 24, 30):
        blocks = [block_of_layer(i, num_layers) for i in range(num_layers)]
        assert blocks == sorted(blocks)
        assert set(blocks) == {0, 1, 2, 3}


def test_round_half_up_at_half_depth():
    # 5 layers: 0.5 * 5 = 2.5 rounds up to 3 (not banker's rounding to 2)
    assert block_of_layer(2, 5) == 1
    assert block_of_layer(3, 5) == 2


def test_partition_labels_with_blocks():
    assert partition_of(Unit(0, "lora", 8), 24) == "lora-8/b0"
    assert partition_of(Unit(4, "lora", 8), 24) == "lora-8/b0"
    assert partition_of(Unit(5, "lora", 8), 24) == "lora-8/b1"
    assert partition_of(Unit(11, "adapter", 128), 24) == "adapter-128/b1"
    assert partition_of(Unit(12, "adapter", 128), 24) == "adapter-128/b2"
    assert partition_of(Unit(23, "lora", 32), 24) == "lora-32/b3"
    # sizes of one kind are different partitions
    assert partition_of(Unit(0, "lora", 8), 24) != partition_of(Unit(0, "lora", 32), 24)


def test_partition_labels_without_blocks():
    labels = {partition_of(Unit(i, "lora", 8), 24, use_blocks=False) for i in range(24)}
    assert labels == {"lora-8/all"}
    assert partition_of(Unit(3, "adapter", 16), 12, use_blocks=False) == "adapter-16/all"


def test_two_kinds_on_24_layers_give_8_partitions():
    units = [Unit(i, k, s) for i in range(24) for k, s in (("lora", 32), ("adapter", 128))]
    assert len({partition_of(u, 24) for u in units}) == 8
    assert len({partition_of(u, 24, use_blocks=False) for u in units}) == 2


def test_space_syntax():
    from prunepeft.space.units import Unit, parse_space

    assert parse_space(["lora-4:q,k", "lora-8:q+v", "adapter-16", "dora-2"]) == [
        ("lora", 4, "q"), ("lora", 4, "k"), ("lora", 8, "q+v"), ("adapter", 16, "ffn_out"), ("dora", 2, "q+v")]
    assert Unit(3, "lora", 8).name == "lora-8@3" and Unit(3, "lora", 8, "v+q").target == "q+v"
    assert Unit.parse("lora-4:ffn_in@2") == Unit(2, "lora", 4, "ffn_in")
    assert Unit.parse(Unit(1, "lora", 2, "o").name) == Unit(1, "lora", 2, "o")
