"""The supernet: a frozen model with PEFT units attached at their sites, added and removed
physically, re-initialised between rounds, and instrumented for the pruning criteria."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from prunepeft.criteria.scores import UnitStats
from prunepeft.errors import UserError
from prunepeft.modules.host import UnitHost
from prunepeft.modules.kinds import UnitOptions, get_kind
from prunepeft.space.units import Unit
from prunepeft.supernet.arch import ArchInfo
from prunepeft.supernet.checkpointing import recomputing


class Supernet:
    def __init__(self, model: nn.Module, arch: ArchInfo, options: UnitOptions | None = None):
        self.model = model
        self.arch = arch
        self.options = options or UnitOptions()
        self._parts: dict[Unit, list[tuple[str, UnitHost]]] = {}
        self._ffn_hooks: dict[int, torch.utils.hooks.RemovableHandle] = {}
        self._collect_activation = False
        self._collect_gradients = False
        self._act_sum: dict[Unit, torch.Tensor] = {}
        self._act_count: dict[Unit, int] = defaultdict(int)
        self._grad_sum: dict[Unit, list[torch.Tensor]] = {}
        self._grad_steps = 0
        self.removal_statistics = False  # also <dL/d delta, delta> per step while activations are collected
        self._removal_sum: dict[Unit, torch.Tensor] = {}
        self._removal_count: dict[Unit, int] = defaultdict(int)
        self._removal_step: dict[Unit, torch.Tensor] = {}  # this step's <dL/d delta, delta>, summed over the unit's sites
        self._owner: dict[tuple[int, str], Unit] = {}
        self.train_backbone = False  # True only for the full fine-tuning baseline

    # ---- the search space -------------------------------------------------------------
    def base_linear(self, name: str) -> nn.Linear:
        """The frozen Linear at `name`, whether or not units are attached to it."""
        module = self.model.get_submodule(name)
        return module.base if isinstance(module, UnitHost) else module

    def linear_names(self, unit: Unit) -> list[str]:
        """The dotted names of the Linears a unit attaches to (one per site; ffn_in may be gate and up)."""
        if unit.layer >= self.arch.num_layers:
            raise UserError(f"unit {unit.name}: layer {unit.layer} does not exist, the model has {self.arch.num_layers} layers (0..{self.arch.num_layers - 1})")
        sites = self.arch.sites[unit.layer]
        return [name for target in unit.sites for name in sites.linears(target)]

    def _hidden(self, layer: int) -> int:
        return self.base_linear(self.arch.sites[layer].query).in_features

    def param_count(self, unit: Unit) -> int:
        """Exact trainable parameters of a unit, from the shapes of its Linears, before building it."""
        linears = [self.base_linear(name) for name in self.linear_names(unit)]  # checks the layer first
        kind, hidden = get_kind(unit.kind), self._hidden(unit.layer)
        return sum(kind.count(lin.in_features, lin.out_features, unit.size, hidden) for lin in linears)

    def _host(self, name: str) -> UnitHost:
        module = self.model.get_submodule(name)
        if isinstance(module, UnitHost):
            return module
        parent_name, _, child = name.rpartition(".")
        host = UnitHost(module)
        setattr(self.model.get_submodule(parent_name), child, host)
        return host

    def add(self, unit: Unit) -> None:
        if unit in self._parts:
            raise ValueError(f"{unit.name} is already in the supernet")
        kind = get_kind(unit.kind)
        parts = []
        for name in self.linear_names(unit):
            host = self._host(name)
            delta = kind.build(host.base, unit.size, self.options, self._hidden(unit.layer))
            delta.to(device=host.base.weight.device)
            host.deltas[unit.key] = delta
            host.recorder = self._record
            self._owner[(id(host), unit.key)] = unit
            self._canonical_order(host)
            parts.append((name, host))
        self._parts[unit] = parts
        if kind.reads_ffn_input:
            self._ensure_ffn_hook(unit.layer)

    def _canonical_order(self, host: UnitHost) -> None:
        """A host's deltas in unit order, whatever the history of removals and re-additions: the
        forward sums them in this order and the model's parameter order follows it, so the supernet
        equals a fresh one with the same units (and data parallel processes agree on the order)."""
        order = sorted(host.deltas, key=lambda key: self._owner[(id(host), key)])
        if list(host.deltas) != order:
            host.deltas = nn.ModuleDict({key: host.deltas[key] for key in order})

    def remove(self, unit: Unit) -> None:
        for name, host in self._parts.pop(unit):
            del host.deltas[unit.key]
            del self._owner[(id(host), unit.key)]
            if not host.deltas:  # put the bare Linear back: no wrapper, no hook, no compute
                parent_name, _, child = name.rpartition(".")
                setattr(self.model.get_submodule(parent_name), child, host.base)
        if get_kind(unit.kind).reads_ffn_input and not any(
                get_kind(u.kind).reads_ffn_input and u.layer == unit.layer for u in self._parts):
            self._ffn_hooks.pop(unit.layer).remove()
        self._act_sum.pop(unit, None)
        self._grad_sum.pop(unit, None)

    def deltas(self, unit: Unit) -> list[tuple[str, nn.Module]]:
        """(Linear name, delta module) of each part of a unit."""
        return [(name, host.deltas[unit.key]) for name, host in self._parts[unit]]

    def _ensure_ffn_hook(self, layer: int) -> None:
        if layer in self._ffn_hooks:
            return
        sites = self.arch.sites[layer]

        def capture(module, args, kwargs):
            x = args[0] if args else next(iter(kwargs.values()))
            self.model.get_submodule(sites.ffn_out).ffn_input = x

        self._ffn_hooks[layer] = self.model.get_submodule(sites.ffn_in).register_forward_pre_hook(capture, with_kwargs=True)

    @property
    def alive(self) -> list[Unit]:
        return sorted(self._parts)

    def unit_named_parameters(self, unit: Unit) -> list[tuple[str, nn.Parameter]]:
        out = []
        for i, (_, host) in enumerate(self._parts[unit]):
            for pname, p in host.deltas[unit.key].named_parameters():
                out.append((f"{unit.name}.{i}.{pname}", p))
        return out

    def unit_parameters(self, unit: Unit) -> list[nn.Parameter]:
        return [p for _, p in self.unit_named_parameters(unit)]

    def trainable_unit_params(self, units=None) -> int:
        return sum(self.param_count(u) for u in (self.alive if units is None else units))

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for name in self.arch.head for p in self.model.get_submodule(name).parameters()]

    def backbone_params(self) -> int:
        return sum(p.numel() for p in self.backbone_parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.backbone_named_parameters()]

    def backbone_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The model's parameters minus the head's and the units' (each tied parameter once)."""
        head = {id(p) for p in self.head_parameters()}
        units = {id(p) for u in self.alive for p in self.unit_parameters(u)}
        return [(n, p) for n, p in self.model.named_parameters() if id(p) not in head and id(p) not in units]

    def set_trainable(self) -> None:
        for p in self.model.parameters():
            p.requires_grad_(self.train_backbone)
        for p in self.head_parameters():
            p.requires_grad_(True)
        for u in self.alive:
            for p in self.unit_parameters(u):
                p.requires_grad_(True)

    def reinitialise(self, units=None) -> None:
        for unit in self.alive if units is None else units:
            for _, host in self._parts[unit]:
                host.deltas[unit.key].reset_parameters(host.base)

    # ---- weights ------------------------------------------------------------------------
    def unit_state_dict(self) -> dict[str, torch.Tensor]:
        """A snapshot (copies: on CPU `.cpu()` would hand back the live tensors, which training then changes)."""
        return {n: p.detach().cpu().clone() for u in self.alive for n, p in self.unit_named_parameters(u)}

    def load_unit_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = {n: p for u in self.alive for n, p in self.unit_named_parameters(u)}
        missing = sorted(set(expected) - set(state))
        if missing:
            raise UserError(f"saved weights lack {len(missing)} unit tensors (e.g. {missing[0]}); they belong to another configuration")
        with torch.no_grad():
            for n, p in expected.items():
                p.copy_(state[n])

    def warm_start(self, state: dict[str, torch.Tensor]) -> list[Unit]:
        """Copy the head and every alive unit whose tensors `state` holds (same name and shape, as a
        search's end state does for its survivors); the other units keep their fresh initialisation.
        Returns the units copied."""
        copied = []
        with torch.no_grad():
            for unit in self.alive:
                named = self.unit_named_parameters(unit)
                if all(n in state and state[n].shape == p.shape for n, p in named):
                    for n, p in named:
                        p.copy_(state[n])
                    copied.append(unit)
        self.load_head_state_dict(state)
        return copied

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        return {f"head.{head}.{name}": p.detach().cpu().clone()  # a snapshot, as unit_state_dict
                for head in self.arch.head for name, p in self.model.get_submodule(head).named_parameters()}

    def load_head_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for key in self.head_state_dict():
                if key not in state:
                    raise UserError(f"saved weights lack the head tensor {key}; they belong to another model")
            for head in self.arch.head:
                for name, p in self.model.get_submodule(head).named_parameters():
                    p.copy_(state[f"head.{head}.{name}"])

    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """What a full fine-tune saves beside the head and unit tensors, under `model.<name>`. Head and
        unit tensors stay out (they have their own keys): safetensors refuses a file holding one
        tensor twice, and a reload must not depend on which copy wins."""
        return {f"model.{n}": p.detach().cpu().contiguous() for n, p in self.backbone_named_parameters()}

    def load_backbone_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = {f"model.{n}": p for n, p in self.backbone_named_parameters()}
        missing = sorted(set(expected) - set(state))
        if missing:
            raise UserError(f"saved weights lack {len(missing)} backbone tensors (e.g. {missing[0]}); they are not a full fine-tune of this model")
        with torch.no_grad():
            for key, p in expected.items():
                if state[key].shape != p.shape:
                    raise UserError(f"saved backbone tensor {key} has shape {tuple(state[key].shape)}, the model {tuple(p.shape)}; "
                                    "they belong to another model")
                p.copy_(state[key])

    # ---- statistics for the criteria ----------------------------------------------------
    def start_statistics(self, activation: bool, gradients: bool) -> None:
        self._collect_activation = activation
        self._collect_gradients = gradients
        self._act_sum, self._act_count = {}, defaultdict(int)
        self._grad_sum, self._grad_steps = {}, 0
        self._removal_sum, self._removal_count, self._removal_step = {}, defaultdict(int), {}

    def stop_statistics(self) -> None:
        self._collect_activation = False
        self._collect_gradients = False

    def _record(self, host: UnitHost, key: str, delta: torch.Tensor) -> None:
        if not self._collect_activation or not host.training or recomputing():  # a checkpointed layer's second forward
            return
        unit = self._owner[(id(host), key)]
        value = delta.detach().abs().mean()
        self._act_sum[unit] = self._act_sum.get(unit, 0) + value
        self._act_count[unit] += 1
        if self.removal_statistics and delta.requires_grad:  # holds delta until backward: only when asked for
            output = delta.detach()
            delta.register_hook(lambda grad: self._record_removal(unit, grad, output))

    def _record_removal(self, unit: Unit, grad: torch.Tensor, delta: torch.Tensor) -> None:
        effect = (grad.detach().to(torch.float64) * delta.to(torch.float64)).sum()  # first-order loss change of removing delta
        self._removal_step[unit] = self._removal_step.get(unit, 0) + effect

    def _close_removal_step(self) -> None:
        """A step's effect is the unit's whole output (every site, every micro-batch of the step), then squared."""
        for unit, effect in self._removal_step.items():
            self._removal_sum[unit] = self._removal_sum.get(unit, 0) + effect.square()
            self._removal_count[unit] += 1
        self._removal_step = {}

    def accumulate_gradients(self) -> None:
        """Call after each step's backward: adds the unit gradients to the round's running sum."""
        self._close_removal_step()
        if not self._collect_gradients:
            return
        self._grad_steps += 1
        for unit in self.alive:
            params = self.unit_parameters(unit)
            sums = self._grad_sum.get(unit)
            if sums is None:  # first step: one copy per tensor, then in-place sums
                self._grad_sum[unit] = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
                continue
            for acc, p in zip(sums, params):
                if p.grad is not None:
                    acc.add_(p.grad)

    def reduce_statistics(self, all_sum) -> None:
        """Data parallel training: make this process's statistics those of all processes together.
        `all_sum` maps a flat float64 tensor to its sum over the processes. Sums and counts are summed,
        so a mean gradient is over every process's steps and an activation mean over every process's
        micro-batches (each weighted alike: accelerate gives every process equal micro-batches)."""
        self._close_removal_step()
        units = self.alive
        grads = {u: self._grad_sum[u] for u in units if u in self._grad_sum}
        parts = [torch.tensor([float(self._grad_steps)], dtype=torch.float64),
                 torch.tensor([float(self._act_sum.get(u, 0.0)) for u in units], dtype=torch.float64),
                 torch.tensor([float(self._act_count.get(u, 0)) for u in units], dtype=torch.float64),
                 torch.tensor([float(self._removal_sum.get(u, 0.0)) for u in units], dtype=torch.float64),
                 torch.tensor([float(self._removal_count.get(u, 0)) for u in units], dtype=torch.float64)]
        parts += [g.detach().reshape(-1).to("cpu", torch.float64) for u in grads for g in grads[u]]
        flat = all_sum(torch.cat(parts))
        self._grad_steps = round(float(flat[0]))
        n = len(units)
        for i, unit in enumerate(units):
            count = round(float(flat[1 + n + i]))
            self._act_sum.pop(unit, None)
            self._act_count.pop(unit, None)
            if count:
                self._act_sum[unit], self._act_count[unit] = flat[1 + i].clone(), count
            count = round(float(flat[1 + 3 * n + i]))
            self._removal_sum.pop(unit, None)
            self._removal_count.pop(unit, None)
            if count:
                self._removal_sum[unit], self._removal_count[unit] = flat[1 + 2 * n + i].clone(), count
        offset = 1 + 4 * n
        for sums in grads.values():
            for g in sums:
                g.copy_(flat[offset:offset + g.numel()].view(g.shape))
                offset += g.numel()

    def unit_stats(self) -> dict[Unit, UnitStats]:
        self._close_removal_step()
        stats = {}
        for unit in self.alive:
            weights = [p.detach().clone() for p in self.unit_parameters(unit)]
            grads = None
            if unit in self._grad_sum and self._grad_steps:
                grads = [g / self._grad_steps for g in self._grad_sum[unit]]
            act = None
            if self._act_count.get(unit):
                act = float(self._act_sum[unit] / self._act_count[unit])
            removal = float(self._removal_sum[unit] / self._removal_count[unit]) if self._removal_count.get(unit) else None
            stats[unit] = UnitStats(weights=weights, mean_grads=grads, mean_abs_activation=act, removal_effect=removal)
        return stats
