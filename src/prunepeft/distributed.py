"""Several processes on one run (`torchrun --nproc_per_node N -m prunepeft ...`, `accelerate launch`).

Training is data parallel (accelerate's DDP and sharded DataLoaders). Everything the search DECIDES
on -- the criteria's statistics, the losses -- is reduced over the processes, and every random
choice is seeded alike, so every process scores and prunes the same units. Only the main process
touches the run folder (`io.py` asks `is_main_process`) and prints; the others wait where they
need what it wrote. One process behaves exactly as before: every helper here is then a no-op.
"""

from __future__ import annotations

import contextlib
import os

from prunepeft.errors import UserError

# torch is imported where it is used: io.py asks `is_main_process` and must stay light

_ACCELERATOR = None


# what torchrun (and accelerate launch, which runs it) or mpirun set: the names accelerate reads
_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


def _env_int(names, default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.strip().lstrip("-").isdigit():
            return int(value)
    return default


def launched_processes() -> int:
    """The processes the launcher started."""
    return _env_int(_SIZE_VARS, 1)


def _check_launch() -> None:
    """`accelerate launch --cpu --num_processes N` starts ONE process (accelerate 1.15 starts several
    CPU processes only through mpirun): say so, rather than run alone while N were asked for."""
    cpu_flag = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if cpu_flag and "MASTER_ADDR" in os.environ and launched_processes() == 1:
        raise UserError("`accelerate launch --cpu` with several processes starts only one; start them with "
                        "`accelerate launch --multi_gpu --num_processes N -m prunepeft ...` (on a machine without GPUs "
                        "prunepeft runs them on the CPU, with gloo) or `torchrun --nproc_per_node N -m prunepeft ...`")


def accelerator():
    """One Accelerator per process (accelerate keeps global state)."""
    global _ACCELERATOR
    if _ACCELERATOR is None:
        import torch
        from accelerate import Accelerator

        _check_launch()
        # accelerate chooses gloo on CPU only when told cpu=True: without it, processes started by
        # torchrun on a machine without GPUs would each train alone on all the data.
        cpu = launched_processes() > 1 and not torch.accelerator.is_available()
        acc = Accelerator(cpu=cpu)
        if acc.num_processes != launched_processes():
            raise UserError(f"the launcher started {launched_processes()} processes but accelerate set up {acc.num_processes} "
                            f"({acc.distributed_type}); launch with `torchrun --nproc_per_node N -m prunepeft ...` or "
                            "`accelerate launch --multi_gpu --num_processes N -m prunepeft ...`")
        _ACCELERATOR = acc
    return _ACCELERATOR


def num_processes() -> int:
    return accelerator().num_processes if _ACCELERATOR is not None else launched_processes()


def process_index() -> int:
    if _ACCELERATOR is not None:
        return _ACCELERATOR.process_index
    return _env_int(_RANK_VARS, 0)


def is_main_process() -> bool:
    """Before accelerate is set up, the launcher's RANK says (so files written early are safe too)."""
    return process_index() == 0


def barrier() -> None:
    if num_processes() > 1:
        accelerator().wait_for_everyone()


@contextlib.contextmanager
def main_process_first():
    """The main process runs the block first (it may build a cache), the others after it."""
    if num_processes() > 1:
        with accelerator().main_process_first():
            yield
    else:
        yield


@contextlib.contextmanager
def quiet_unless_main():
    """Print lines once: the other processes' stdout and status lines go nowhere (their warnings
    and errors still show)."""
    if is_main_process():
        yield
        return
    import logging

    from prunepeft.logs import LOGGER

    logger = logging.getLogger(LOGGER)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def process_random_stream():
    """Inside: random draws (dropout masks) differ per process, as one process draws a mask per
    example of the global batch. Outside, the random state is as before on every process, so the
    random decisions after it (initialisations, orders) stay alike everywhere."""
    if num_processes() == 1:
        yield
        return
    import torch

    device = accelerator().device
    devices = [] if device.type == "cpu" else [device.index or 0]
    with torch.random.fork_rng(devices=devices, device_type="cuda" if device.type == "cpu" else device.type):
        torch.manual_seed(int(torch.randint(2**62, ())) + process_index())
        yield


def global_batch_size(per_device: int) -> int:
    """Training examples per optimiser step over all processes."""
    return per_device * num_processes()


def steps_per_epoch(batches: int) -> int:
    """Steps each process takes through a loader of `batches` batches once accelerate shards it
    (accelerate's even_batches: the last process pads its share from the start of the data)."""
    return -(-batches // num_processes())


def _all_sum(tensor):
    acc = accelerator()
    return acc.reduce(tensor.to(acc.device), reduction="sum").cpu()


def mean_over_processes(value):
    """A per-process scalar (e.g. a micro-batch's mean loss) -> its mean over processes, the
    global batch's value when the micro-batches are equal in size."""
    if num_processes() == 1:
        return value
    return _all_sum(value.detach().double().reshape(1))[0] / num_processes()


def reduce_statistics(supernet) -> None:
    """Sum the criteria's statistics over the processes, so each holds those of the global batches."""
    if num_processes() > 1:
        supernet.reduce_statistics(_all_sum)


def gather(items: list) -> list:
    """Every process's `items`, concatenated in process order, on every process."""
    if num_processes() == 1:
        return list(items)
    from accelerate.utils import gather_object

    return gather_object(list(items))


def end() -> None:
    """After a command: wait for the main process's files, then close the process group."""
    if _ACCELERATOR is not None and _ACCELERATOR.num_processes > 1:
        _ACCELERATOR.wait_for_everyone()
        import torch.distributed

        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
