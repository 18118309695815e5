"""Gradient checkpointing of the backbone's layers (train.gradient_checkpointing) and the one fact the
supernet's statistics need about it: whether a forward is a recomputation inside backward.

A checkpointed layer keeps only its input in forward and re-runs its forward during backward to
get the activations back. Everything inside the layer runs twice, the units' hosts included, so
statistics gathered in forward must skip the second run (`recomputing`).
"""

from __future__ import annotations

import torch
from torch import nn

from prunepeft.errors import UserError


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Checkpoint every layer of a Hugging Face model, non-reentrant (idempotent)."""
    if getattr(model, "is_activation_checkpointing", False):
        return
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise UserError(f"{type(model).__name__} does not support gradient checkpointing; set train.gradient_checkpointing=false")
    # Non-reentrant checkpointing recomputes correctly whether or not a layer's input requires grad.
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    # transformers also hooks the input embeddings to make their output require grad (only reentrant
    # checkpointing needs that). With a frozen backbone it would pull backward through every layer below
    # the lowest unit, so the hook goes again.
    model.disable_input_require_grads()


def recomputing() -> bool:
    """True while autograd runs a backward pass, which is where checkpointing re-runs a layer's forward.
    A training forward never runs inside backward otherwise. (torch's own checkpoint code tells its
    passes apart by the same graph-task id; -1 means no backward is running on this thread.)"""
    return torch._C._current_graph_task_id() != -1
