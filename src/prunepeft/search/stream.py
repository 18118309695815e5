"""The search's training stream: consecutive chunks of a seeded endless shuffle of the round data,
so round r always sees the same examples (a resumed search replays them) and no example is seen
twice before every example was seen once."""

from __future__ import annotations

import numpy as np


def chunk(encoded: list, start: int, count: int, seed: int) -> list:
    """`count` examples from position `start` of the stream (a new permutation per pass)."""
    n = len(encoded)
    out, pos = [], start
    while len(out) < count:
        epoch, offset = divmod(pos, n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        take = min(count - len(out), n - offset)
        out.extend(encoded[i] for i in perm[offset:offset + take])
        pos += take
    return out
