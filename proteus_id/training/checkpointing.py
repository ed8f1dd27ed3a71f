"""Checkpoints: everything needed to continue bit-exactly, written to a temporary folder and renamed when complete.

    <output_dir>/checkpoints/checkpoint-0000500/
        model.safetensors, optimizer.bin, scheduler.bin, random_states_R.pkl   accelerate's save_state (any backend)
        trainer_state.json      step, epoch, batch position, bad-item counts
        train_rng_R.pt          each process's training generator (timesteps, noise, dropouts)
        ema.pt                  EMA state (when enabled)
        transformer/            the released layout (config.json + diffusion_pytorch_model*.safetensors), if exported
        transformer_ema/        the same with the EMA weights

Only the last `keep_last` complete checkpoints are kept. A folder whose name starts with ".tmp-" is an unfinished
save (the run died while writing it); it is ignored and removed by the next save.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

logger = logging.getLogger("proteus_id")
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of this epoch already consumed
    items_seen: int = 0
    bad_items: int = 0
    bad_reasons: dict = field(default_factory=dict)
    world_size: int = 1


def checkpoint_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()]
    return [p for _, p in sorted(found)]


def export_transformer(accelerator, model, path: Path, lora: bool = False) -> None:
    """Write the transformer in the released layout (config.json + safetensors), loadable strictly by our
    ProteusIDTransformer3DModel.from_pretrained and by the release's. LoRA adapters are merged into the weights."""
    state = accelerator.get_state_dict(model)  # a collective under FSDP/ZeRO-3: every process calls it
    if not accelerator.is_main_process:
        return
    unwrapped = accelerator.unwrap_model(model)
    if lora:
        merged = copy.deepcopy(unwrapped).to("cpu")
        merged.fuse_lora()
        merged.unload_lora()
        state = merged.state_dict()
    from huggingface_hub import split_torch_state_dict_into_shards
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    unwrapped.save_config(path)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    split = split_torch_state_dict_into_shards(state, filename_pattern="diffusion_pytorch_model{suffix}.safetensors", max_shard_size="10GB")
    for filename, names in split.filename_to_tensors.items():
        save_file({n: state[n] for n in names}, str(path / filename), metadata={"format": "pt"})
    if split.is_sharded:
        index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
        (path / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def save_checkpoint(accelerator, root: Path, state: TrainState, rng: torch.Generator, model, ema, config) -> Path:
    final = root / f"checkpoint-{state.step:07d}"
    tmp = root / f".tmp-checkpoint-{state.step:07d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-checkpoint-*"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    torch.save(rng.get_state(), tmp / f"train_rng_{accelerator.process_index}.pt")
    if config.checkpoint.export_transformer:
        export_transformer(accelerator, model, tmp / "transformer", lora=config.mode == "lora")
    if ema is not None and accelerator.is_main_process:
        torch.save(ema.state_dict(), tmp / "ema.pt")
        if config.checkpoint.export_transformer:
            with ema_weights(ema, accelerator.unwrap_model(model)):
                export_transformer_unwrapped(accelerator.unwrap_model(model), tmp / "transformer_ema", lora=config.mode == "lora")
    if accelerator.is_main_process:
        state.world_size = accelerator.num_processes
        (tmp / "trainer_state.json").write_text(json.dumps(asdict(state), indent=1))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in checkpoint_dirs(root)[: -config.checkpoint.keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def export_transformer_unwrapped(model, path: Path, lora: bool = False) -> None:
    """Single-process variant of export_transformer for a plain (unwrapped) module, e.g. with EMA weights swapped in."""
    from safetensors.torch import save_file

    source = model
    if lora:
        source = copy.deepcopy(model).to("cpu")
        source.fuse_lora()
        source.unload_lora()
    path.mkdir(parents=True, exist_ok=True)
    model.save_config(path)
    save_file({k: v.detach().cpu().contiguous() for k, v in source.state_dict().items()},
              str(path / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})


class ema_weights:  # noqa: N801 - used as a context manager
    """Swap the EMA weights into the model's trainable parameters for the duration of the block."""

    def __init__(self, ema, model):
        self.ema, self.params = ema, [p for p in model.parameters() if p.requires_grad]

    def __enter__(self):
        self.ema.store(self.params)
        self.ema.copy_to(self.params)

    def __exit__(self, *exc):
        self.ema.restore(self.params)


def load_checkpoint(accelerator, path: Path, rng: torch.Generator, ema, seed: int) -> TrainState:
    accelerator.load_state(str(path))
    state = TrainState(**json.loads((path / "trainer_state.json").read_text()))
    rng_file = path / f"train_rng_{accelerator.process_index}.pt"
    if rng_file.is_file() and state.world_size == accelerator.num_processes:
        rng.set_state(torch.load(rng_file, weights_only=True))
    else:
        logger.warning("checkpoint was written by %d processes, resuming with %d: the data order and random draws "
                       "continue from the saved position but are not bit-identical to an uninterrupted run",
                       state.world_size, accelerator.num_processes)
        rng.manual_seed(seed * 1000 + accelerator.process_index + 7919 * state.step)
    if ema is not None:
        ema_file = path / "ema.pt"
        if ema_file.is_file():
            ema.load_state_dict(torch.load(ema_file, weights_only=True))
        else:
            logger.warning("%s has no ema.pt: the EMA restarts from the current weights", path)
    return state
