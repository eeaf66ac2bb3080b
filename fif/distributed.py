"""One process per device: `fif train` and `fif eval` under torchrun (gloo on CPU, NCCL on GPUs).

    fif train recipes/tiny.fif --nproc 2     # = python -m torch.distributed.run --standalone
                                             #   --nproc-per-node 2 -m fif train recipes/tiny.fif

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; fif reads them and nothing else needs configuring.
Without them (a plain `fif train`) every helper here is a no-op for a world of one process, so the
single-process code path is the distributed one with world size 1. The top of this module is
torch-free (`fif --help` must not import torch); torch is imported inside the functions.

What the rest of fif uses:
  rank(), world_size(), is_main()    who this process is (is_main: rank 0 writes files and bars)
  setup(device) -> device            joins the process group; 'cuda' becomes cuda:<LOCAL_RANK>
  batch_range(n, batch)              the contiguous, batch-aligned samples this rank evaluates
  gather_cat(t)                      every rank's tensor, concatenated in rank order
  all_reduce_sum(t)                  an element-wise sum over ranks (in place, returned)
  average_gradients(params, weight)  grad <- sum over ranks of weight_r * grad_r
  broadcast_modules(modules)         rank 0's weights and buffers to every rank
  main_first()                       rank 0 runs the block first (trains and caches a classifier)
  launch(nproc, command, args)       run `fif COMMAND ARGS` under torchrun with nproc processes
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

from .errors import FifError, diagnostic

BACKENDS = ("gloo", "nccl")


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    """True when this process is one of several and its process group is up."""
    if world_size() < 2:
        return False
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized()


def backend_for(device: str) -> str:
    """gloo for CPU, nccl for CUDA; FIF_DIST_BACKEND=gloo|nccl overrides. E521 for NCCL without GPUs."""
    import torch
    chosen = os.environ.get("FIF_DIST_BACKEND", "").strip().lower() or \
        ("nccl" if device.startswith("cuda") else "gloo")
    if chosen not in BACKENDS:
        raise FifError(diagnostic("E521", f"FIF_DIST_BACKEND={chosen!r} is not a backend fif knows",
                                  hint="use gloo (CPU) or nccl (CUDA), or leave it unset"))
    if chosen == "nccl" and not torch.cuda.is_available():
        raise FifError(diagnostic("E521", "the NCCL backend was asked for, but no CUDA GPU is available here",
                                  hint="use --device cpu (gloo), or run on a machine with GPUs"))
    if chosen == "nccl" and not device.startswith("cuda"):
        raise FifError(diagnostic("E521", "the NCCL backend needs --device cuda",
                                  hint="add --device cuda, or use gloo for CPU processes"))
    return chosen


def setup(device: str) -> str:
    """Join the process group when torchrun started several processes; return this rank's device
    ('cuda' becomes 'cuda:<LOCAL_RANK>'). A no-op returning `device` for one process."""
    if world_size() < 2:
        return device
    import torch
    import torch.distributed as dist
    backend = backend_for(device)
    if device.startswith("cuda"):
        count = torch.cuda.device_count()
        if local_rank() >= count:
            raise FifError(diagnostic("E521", f"process {local_rank()} on this machine has no GPU of its own "
                                      f"({count} visible)", hint=f"use --nproc {count} or fewer"))
        device = f"cuda:{local_rank()}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return device


def shutdown() -> None:
    if active():
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        import torch.distributed as dist
        dist.barrier()


@contextmanager
def main_first():
    """Rank 0 runs the block before the others (which then find its cached result)."""
    if not active():
        yield
        return
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def batch_range(n: int, batch: int) -> tuple[int, int]:
    """[start, stop) of this rank's samples among n: a contiguous run of whole batches of `batch`
    (rank order = sample order), so each batch, and its seed, is the one a single process makes."""
    batches = -(-n // batch) if n else 0
    size, world, r = batches // world_size(), world_size(), rank()
    extra = batches % world
    first = r * size + min(r, extra)
    last = first + size + (1 if r < extra else 0)
    return min(first * batch, n), min(last * batch, n)


def _device_of(t):
    """Where a tensor must be for a collective: this rank's GPU under NCCL, the CPU under gloo."""
    import torch
    import torch.distributed as dist
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_cat(t):
    """Every rank's tensor (any length along dim 0, same trailing shape and dtype), concatenated in
    rank order; `t` itself for one process. Bytes are exact: nothing is summed."""
    if not active():
        return t
    import torch
    import torch.distributed as dist
    dev = _device_of(t)
    dtype = t.dtype
    wire = t.detach().to(dev)
    if dtype == torch.bool:
        wire = wire.to(torch.uint8)
    n = torch.tensor([wire.shape[0]], device=dev, dtype=torch.int64)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    most = int(max(int(s) for s in sizes))
    padded = torch.zeros((most, *wire.shape[1:]), dtype=wire.dtype, device=dev)
    padded[:wire.shape[0]] = wire
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded.contiguous())
    out = torch.cat([p[:int(s)] for p, s in zip(parts, sizes)])
    return out.to(device=t.device, dtype=dtype)


def all_reduce_sum(t):
    """t summed element-wise over ranks (in place for one device; returned)."""
    if not active():
        return t
    import torch.distributed as dist
    dev = _device_of(t)
    wire = t.to(dev)
    dist.all_reduce(wire)
    if wire is not t:
        t.copy_(wire.to(t.device))
    return t


def average_gradients(params, weight: float) -> None:
    """Every parameter's gradient becomes sum over ranks of weight_r * grad_r, where weight_r is
    the rank's share of the global batch: the gradient of the global batch's mean loss (what
    DistributedDataParallel does, with unequal shards weighted exactly). Missing grads count as 0."""
    if not active():
        return
    import torch
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params]) * weight
    all_reduce_sum(flat)
    at = 0
    for p in params:
        k = p.numel()
        p.grad.copy_(flat[at:at + k].view_as(p.grad))
        at += k


def broadcast_modules(modules, *, buffers_only: bool = False) -> None:
    """Rank 0's parameters and buffers (only buffers: BatchNorm statistics), copied to every rank."""
    if not active():
        return
    import torch.distributed as dist
    for m in modules:
        for t in ([] if buffers_only else list(m.parameters())) + list(m.buffers()):
            dev = _device_of(t)
            wire = t.data.to(dev)
            dist.broadcast(wire, 0)
            if wire is not t.data:
                t.data.copy_(wire.to(t.device))


def check_nproc(nproc: int) -> None:
    """E521 for nproc < 1, or for --nproc in a process torchrun already started."""
    if nproc < 1:
        raise FifError(diagnostic("E521", f"--nproc must be at least 1, got {nproc}",
                                  hint="--nproc 2 runs two processes (one per GPU, or two on the CPU)"))
    if "WORLD_SIZE" in os.environ:
        raise FifError(diagnostic("E521", "--nproc inside a process that torchrun started",
                                  hint="leave out --nproc when you run fif under torchrun yourself"))


def launch(nproc: int, argv: list[str]) -> int:
    """Run `fif ARGV` (without its --nproc) as `python -m torch.distributed.run --standalone
    --nproc-per-node NPROC -m fif ARGV`; return its exit code."""
    check_nproc(nproc)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "fif", *strip_nproc(argv)]
    return subprocess.call(cmd)


def strip_nproc(argv: list[str]) -> list[str]:
    """argv without `--nproc N` / `--nproc=N` (what each launched process gets)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out
