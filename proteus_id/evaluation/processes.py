"""Which process am I? accelerate's PartialState, with one fix for CPU-only machines: accelerate treats a CPU
process group as distributed only when asked (`cpu=True`), so without it `torchrun --nproc_per_node N` on a CPU
machine gives N processes that each believe they are alone and evaluate every row."""

from __future__ import annotations


def process_state():
    from accelerate import PartialState

    import torch

    return PartialState(cpu=not torch.cuda.is_available())
