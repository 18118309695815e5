"""Has the supernet collapsed? A shared turn thrown to the label prior by full-rate steps stays
there: its outputs stop depending on the input (glue/qnli seed 1: the spread of its logits over
the same training examples falls to 0.009x its start at step 125 and 0.001x at step 150, while the
supernets of glue/rte, slow to learn, stay above their start; docs/method-notes.md, "A collapse
ends the try early"). Watching that spread lets the search retry such a turn after about a hundred
steps instead of after the 31x its plan a slow learner may need."""

from __future__ import annotations

import torch

from prunepeft.distributed import accelerator, mean_over_processes

PROBE_EXAMPLES = 64  # training examples the outputs are read on (a forward pass, no training)
CHECK_EVERY = 25  # steps between two readings once the turn has trained its planned steps
COLLAPSED_SPREAD = 0.05  # x the turn's starting spread, at two readings in a row: collapsed


def output_spread(model, loader) -> float:
    """How much the model's outputs vary with its input: the std over the probe examples of each
    output, after removing each example's mean over the classes (a constant shift of every logit
    changes no prediction), averaged over the outputs. Same on every process (mean over them)."""
    device = accelerator().device
    was_training = model.training
    model.eval()  # no dropout; the supernet records no statistics from an eval-mode forward
    outputs = []
    # a DataLoader draws its base seed from the global RNG: restore it, so that the training's
    # dropout masks, and so the search's path, are those of a search that is not watched
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            outputs.append(model(**batch).logits.float())
    model.train(was_training)
    logits = torch.cat(outputs)
    if logits.shape[-1] > 1:
        logits = logits - logits.mean(dim=-1, keepdim=True)
    return float(mean_over_processes(logits.std(dim=0).mean()))


class CollapseWatch:
    """Reads the spread at the start of a turn, then every CHECK_EVERY steps from `planned_steps` on;
    `collapsed` once two readings in a row are below COLLAPSED_SPREAD x the start."""

    def __init__(self, model, loader, planned_steps: int):
        self.model, self.loader, self.planned_steps = model, loader, planned_steps
        self.start = output_spread(model, loader)
        self.readings: list[float] = []

    def check(self, steps: int) -> bool:
        """After `steps` training steps: has the supernet collapsed?"""
        if steps >= self.planned_steps and (steps - self.planned_steps) % CHECK_EVERY == 0:
            self.readings.append(output_spread(self.model, self.loader))
        return self.collapsed

    @property
    def collapsed(self) -> bool:
        return len(self.readings) >= 2 and all(r < COLLAPSED_SPREAD * self.start for r in self.readings[-2:])
