"""Report figures as pure functions: plain data in, PNG bytes out (no file access).

- `structure_png`: paper Fig. 3, which unit survived in which layer, and when the others were pruned.
- `tendency_png`: paper Fig. 1, the warm-up tendency matrix F[criterion, partition] with the chosen criteria.
- `trace_png`: trainable unit params and dev score per pruning round.
"""

from __future__ import annotations

from io import BytesIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch, Rectangle

KEPT = "kept"
_KEPT_RGB = (0.17, 0.55, 0.30)
_ABSENT_RGB = (0.93, 0.93, 0.93)


def _png(fig) -> bytes:
    buf = BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _round_rgb(rnd: int, last: int):
    """Early rounds light orange, late rounds dark red."""
    t = 0.35 + 0.6 * ((rnd - 1) / max(1, last - 1))
    return plt.get_cmap("OrRd")(t)[:3]


def structure_png(grid: dict[str, list], title: str = "Searched structure") -> bytes:
    """grid: family -> one cell per layer: "kept", a round number (pruned in that round) or None (not in the space)."""
    families = list(grid)
    layers = max((len(row) for row in grid.values()), default=0)
    rounds = sorted({c for row in grid.values() for c in row if isinstance(c, int)})
    last = rounds[-1] if rounds else 1
    image = []
    for fam in families:
        row = []
        for cell in list(grid[fam]) + [None] * (layers - len(grid[fam])):
            row.append(_KEPT_RGB if cell == KEPT else _ABSENT_RGB if cell is None else _round_rgb(cell, last))
        image.append(row)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * layers + 2.0), 0.7 * len(families) + 1.6))
    ax.imshow(image, aspect="auto", interpolation="nearest")
    for y, fam in enumerate(families):
        for x, cell in enumerate(grid[fam]):
            if cell is None:
                continue
            text = KEPT if cell == KEPT else f"R{cell}"
            dark = cell == KEPT or (cell - 1) / max(1, last - 1) > 0.5
            ax.text(x, y, text, ha="center", va="center", fontsize=7 if layers > 12 else 8,
                    color="white" if dark else "black")
    ax.set_xticks(range(layers))
    ax.set_xticklabels([str(i) for i in range(layers)], fontsize=8)
    ax.set_yticks(range(len(families)))
    ax.set_yticklabels(families)
    ax.set_xlabel("layer")
    ax.set_title(title)
    ax.set_xticks([x - 0.5 for x in range(1, layers)], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(families))], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    handles = [Patch(color=_KEPT_RGB, label="kept")]
    handles += [Patch(color=_round_rgb(r, last), label=f"pruned in round {r}") for r in rounds]
    if any(c is None for row in grid.values() for c in row):
        handles.append(Patch(color=_ABSENT_RGB, label="not in configuration"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _png(fig)


def tendency_png(tendency: dict[str, dict[str, float]], strategy: dict[str, list[str]],
                 criteria: list[str], partitions: list[str]) -> bytes:
    """Heatmap of F (criteria rows x partitions columns); the criteria chosen per partition get a bold border and a star."""
    values = [[float(tendency.get(s, {}).get(p, float("nan"))) for p in partitions] for s in criteria]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(partitions) + 2.5), 0.55 * len(criteria) + 1.8))
    im = ax.imshow(values, cmap="Blues", aspect="auto", vmin=0.0,
                   vmax=max([v for row in values for v in row if v == v] + [1e-9]))
    vmax = im.get_clim()[1]
    for y, s in enumerate(criteria):
        for x, p in enumerate(partitions):
            v = values[y][x]
            chosen = s in strategy.get(p, [])
            label = "–" if v != v else f"{v:.2f}" + ("★" if chosen else "")
            ax.text(x, y, label, ha="center", va="center", fontsize=8,
                    fontweight="bold" if chosen else "normal",
                    color="white" if v == v and v > 0.6 * vmax else "black")
            if chosen:
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="crimson", linewidth=2.5))
    ax.set_xticks(range(len(partitions)))
    ax.set_xticklabels(partitions, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(criteria)))
    ax.set_yticklabels(criteria)
    ax.set_xlabel("partition (family / block)")
    ax.set_title("Warm-up tendency F (★ / red border: chosen criteria)")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    return _png(fig)


def trace_png(rounds: list[int], params: list[int], budget: int | None,
              dev: list[float | None], metric: str = "dev") -> bytes:
    """Two stacked panels sharing the round axis: trainable unit params (dashed budget) and the dev score.

    `rounds`/`params` may start at round 0 (the full space); `dev` aligns with `rounds` (None = not measured).
    """
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(6.0, 5.0))
    top.plot(rounds, params, marker="o", color="tab:blue", label="trainable unit params")
    if budget is not None:
        top.axhline(budget, linestyle="--", color="tab:red", label=f"budget {budget:,}")
    top.set_ylabel("trainable unit params")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    points = [(r, d) for r, d in zip(rounds, dev) if d is not None]
    if points:
        bottom.plot([r for r, _ in points], [d for _, d in points], marker="s", color="tab:green")
    else:
        bottom.text(0.5, 0.5, "no dev scores in the trace", ha="center", va="center", transform=bottom.transAxes)
    bottom.set_ylabel(f"dev {metric}")
    bottom.set_xlabel("pruning round")
    bottom.grid(alpha=0.3)
    bottom.set_xticks(rounds)
    top.set_title("Pruning trace")
    return _png(fig)
