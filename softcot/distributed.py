"""Data parallelism through accelerate: what softcot needs from the process group, in one place.

    accelerate launch --multi_gpu --num_processes 2 -m softcot.cli train ...   # or: --config_file FILE

(On a CPU-only machine the same torchrun-based launcher is used: accelerate's own multi-CPU
launcher needs MPI; softcot then joins the group with gloo.)

Every process holds the frozen LMs and its own copy of the trainable module. softcot does not
wrap anything in DDP: a method's forward is `method.loss(batch)`, not one nn.Module call, so the
trainer sums the trainable gradients over processes itself (one all-reduce per optimizer step,
through accelerate's `reduce`), which is exactly what DDP would do. With one process every call
here is a no-op, so the same code runs single-process.
"""
from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=1)
def state():
    """accelerate's PartialState: it joins the process group `accelerate launch` set up (gloo on
    CPU, NCCL on GPUs); a plain `python` run is one process."""
    import os

    from accelerate import PartialState

    # Without CUDA, accelerate only joins a torchrun-style group (LOCAL_RANK set) when told it is
    # on CPU; it then uses gloo.
    use_cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
    return PartialState(cpu=use_cpu)


def world() -> int:
    return state().num_processes


def rank() -> int:
    return state().process_index


def is_main() -> bool:
    return state().is_main_process


def barrier() -> None:
    if world() > 1:
        state().wait_for_everyone()


def sum_tensor(t: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of `t` over processes (a copy when there is one process)."""
    if world() == 1:
        return t.clone()
    from accelerate.utils import reduce

    return reduce(t.contiguous(), reduction="sum")


def sum_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce (sum) the gradients of `params`, flattened into one buffer (one collective)."""
    if world() == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = sum_tensor(torch.cat([g.reshape(-1) for g in grads]))
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def broadcast_parameters(params: list[torch.nn.Parameter]) -> None:
    """Make every process start from process 0's trainable weights."""
    if world() == 1:
        return
    from accelerate.utils import broadcast

    with torch.no_grad():
        for p in params:
            p.copy_(broadcast(p.data.contiguous(), from_process=0))


def default_device() -> str:
    """This process's device under `accelerate launch` (cuda:LOCAL_RANK), else 'auto'."""
    return str(state().device) if world() > 1 else "auto"
