"""The training loop, top to bottom (accelerate: one process, DDP over processes and machines, DeepSpeed, FSDP).

    config -> Accelerator -> model spec (spec.py) -> cache -> model, trainable parameters, EMA
           -> AdamW + LR schedule -> resume from the last checkpoint (exact: weights, optimizer, schedule, RNG, data)
           -> for each batch: loss = spec.training_loss(...); backward; clip; step; log; checkpoint; validate
           -> final checkpoint, transformer/ (and transformer_ema/) in the released layout

Everything model-specific lives in the spec; everything stored lives in checkpointing.py.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import write_text_atomic
from ..errors import UserError
from .cache import FeatureCache
from .checkpointing import TrainState, checkpoint_dirs, export_transformer, export_transformer_unwrapped, ema_weights
from .checkpointing import load_checkpoint, save_checkpoint
from .config import TrainConfig, to_dict
from .data import CacheDataset, Collate, EpochBatches, to_device
from .spec import ProteusIDSpec

logger = logging.getLogger("proteus_id")


@dataclass
class TrainResult:
    step: int
    output_dir: Path
    losses: list[float]
    stopped_early: bool


def _flat_hparams(config: TrainConfig) -> dict:
    """TensorBoard's hparams take scalars only: nested keys dotted, lists as text."""
    out = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)

    walk("", to_dict(config))
    return out


def _make_accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    log_with = None
    if config.logging.tensorboard:
        from ..errors import require

        require("tensorboard", "train", "TensorBoard logging (or set logging.tensorboard: false)")
        log_with = "tensorboard"
    output = Path(config.output_dir)
    return Accelerator(
        cpu=not torch.cuda.is_available(),  # CPU runs (and CPU tests) use gloo with any number of processes
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
    )


def train(config: TrainConfig, stop_at_step: int | None = None, resume: bool = True, spec_class=ProteusIDSpec,
          export_at_stop: bool = False) -> TrainResult:
    """Run (or resume) training. `spec_class` is the model specification (spec.py); another model trains with its own.
    `export_at_stop`: a run stopped by `stop_at_step` also exports its weights to output_dir/step-NNNNNN/ (a model of
    that step, e.g. for comparing runs at the same budget while they go on to max_steps)."""
    from diffusers.optimization import get_scheduler
    from tqdm import tqdm

    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per checkpoint is ours to print
    accelerator = _make_accelerator(config)
    output = Path(config.output_dir)
    device = accelerator.device

    # ---- model spec, data, model
    spec = spec_class(config, device)
    cache = FeatureCache(config.data.cache)
    spec.check_cache(cache)
    partners = _partner_cache(config, cache, spec)
    model = spec.load_model()
    spec.set_trainable(model, config.mode)
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise UserError(f"mode '{config.mode}' leaves no trainable parameter in this model")
    ema = None
    if config.ema.enabled:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(trainable, decay=config.ema.decay)
        ema.to(device)

    # ---- optimizer and schedule (the release's AdamW defaults; the schedule steps once per process per update,
    #      as accelerate's prepared scheduler does, hence the factors)
    opt = config.optimizer
    optimizer = torch.optim.AdamW(trainable, lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay, eps=opt.eps)
    lr_scheduler = get_scheduler(
        config.lr_scheduler.name, optimizer=optimizer,
        num_warmup_steps=config.lr_scheduler.warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_steps * accelerator.num_processes, num_cycles=config.lr_scheduler.num_cycles,
    )
    if accelerator.state.deepspeed_plugin is not None:  # our data loader is not prepared, so DeepSpeed is told the size
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = config.batch_size
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    model_config = accelerator.unwrap_model(model).config

    # ---- state, resume
    rng = torch.Generator().manual_seed(config.seed * 1000 + accelerator.process_index)
    state = TrainState(world_size=accelerator.num_processes)
    checkpoints = output / "checkpoints"
    if resume and checkpoint_dirs(checkpoints):
        latest = checkpoint_dirs(checkpoints)[-1]
        state = load_checkpoint(accelerator, latest, rng, ema, config.seed)
        accelerator.print(f"resumed from {latest} (step {state.step})")
        if accelerator.is_main_process:
            _truncate_log(output / "train_log.jsonl", state.step)  # steps logged after the checkpoint are redone
    if state.step >= config.max_steps:
        accelerator.print(f"already at step {state.step} of {config.max_steps}: nothing to do")
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.json").write_text(json.dumps(to_dict(config), indent=1))
    if config.logging.tensorboard:
        accelerator.init_trackers("proteus-id", config=_flat_hparams(config))

    collate = Collate(cache.settings["max_text_length"], cache.null_text())
    dataset = CacheDataset(cache, partners)
    batches_per_epoch = EpochBatches.batches_per_epoch(len(dataset), config.batch_size, accelerator.num_processes)
    validator = _make_validator(config, cache, device, accelerator)
    log_path = output / "train_log.jsonl"
    losses: list[float] = []
    reasons = Counter(state.bad_reasons)
    bar = tqdm(total=config.max_steps, initial=state.step, desc="train", disable=not accelerator.is_local_main_process)
    stopped_early = False
    micro_losses: list[torch.Tensor] = []  # the losses of the micro-batches of one optimizer step
    grad_norm: torch.Tensor | None = None

    # ---- the loop
    while state.step < config.max_steps and not stopped_early:
        sampler = EpochBatches(len(dataset), config.batch_size, accelerator.process_index, accelerator.num_processes,
                               config.seed, state.epoch, start=state.batch_in_epoch, shuffle=config.data.shuffle)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                             num_workers=config.data.num_workers)
        for batch in loader:
            state.batch_in_epoch += 1
            if state.batch_in_epoch >= batches_per_epoch:  # the position to resume from is the next epoch's start
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            if not _batch_usable(batch, state, reasons, accelerator, config):
                continue
            batch = to_device(batch, device)
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss, info = spec.training_loss(model, batch, rng, model_config)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.optimizer.max_grad_norm > 0:
                    # the norm before clipping: how often and how hard the clip bites is worth seeing in the log
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.optimizer.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            micro_losses.append(loss.detach().float())
            if not accelerator.sync_gradients:
                continue

            state.step += 1
            if ema is not None and state.step % config.ema.update_every == 0:
                ema.step([p for p in model.parameters() if p.requires_grad])
            step_loss, micro_losses = torch.stack(micro_losses).mean().reshape(1), []
            mean_loss = accelerator.gather(step_loss).mean().item()  # over micro-batches and processes
            losses.append(mean_loss)
            bar.update(1)
            if accelerator.is_main_process and state.step % config.logging.every_steps == 0:
                record = {"step": state.step, "loss": mean_loss, "lr": lr_scheduler.get_last_lr()[0],
                          "epoch": state.epoch}
                # info: this process's last micro-batch (face branch, extra loss terms)
                record.update({k: v.item() if torch.is_tensor(v) else v for k, v in info.items()})
                if grad_norm is not None:
                    record["grad_norm"] = float(grad_norm)
                with log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                accelerator.log({f"train/{k}": record[k] for k in ("loss", "lr", "grad_norm") if k in record},
                                step=state.step)
                bar.set_postfix(loss=f"{mean_loss:.4f}")
            last = state.step >= config.max_steps
            stop_now = stop_at_step is not None and state.step >= stop_at_step
            if (config.checkpoint.every_steps and state.step % config.checkpoint.every_steps == 0) or last or stop_now:
                state.bad_reasons = dict(reasons)
                path = save_checkpoint(accelerator, checkpoints, state, rng, model, ema, config)
                accelerator.print(f"checkpoint: {path}")
            if validator is not None and config.validation.every_steps and state.step % config.validation.every_steps == 0:
                _validate(validator, accelerator, model, spec, ema, state.step, output)
            if last:
                break
            if stop_now:
                stopped_early = True
                break
    bar.close()

    # ---- the trained transformer, in the released layout
    if stopped_early and export_at_stop:
        _export(accelerator, model, ema, output / f"step-{state.step:06d}", config)
        accelerator.print(f"weights of step {state.step}: {output / f'step-{state.step:06d}'}")
    if not stopped_early:
        _export(accelerator, model, ema, output, config)
        if validator is not None and not config.validation.every_steps:
            _validate(validator, accelerator, model, spec, ema, state.step, output)
        accelerator.print(f"trained transformer: {output / 'transformer'}")
        if accelerator.is_main_process and log_path.is_file():
            from .plots import plot_losses

            plot_losses(log_path, output / "loss.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(step=state.step, output_dir=output, losses=losses, stopped_early=stopped_early)


def _partner_cache(config: TrainConfig, cache: FeatureCache, spec) -> FeatureCache | None:
    """The motion partners' cache when the contrast term is on: made with the same settings as the clips' cache."""
    if not config.loss.motion_contrast_weight:
        return None
    partners = FeatureCache(config.data.partner_cache)
    spec.check_cache(partners)
    differ = sorted(k for k in set(cache.settings) | set(partners.settings) if cache.settings.get(k) != partners.settings.get(k))
    if differ:
        raise UserError(f"partner cache {partners.root} was made with other settings than {cache.root} "
                        f"({', '.join(differ)}); precompute both with the same config")
    known = {item.id for item in cache.items}
    if not any(item.id in known for item in partners.items):
        raise UserError(f"no item of the partner cache {partners.root} has an id of {cache.root}: the partners are "
                        f"paired by id (proteus-id toy render --contrast keeps the clips' ids)")
    return partners


def _export(accelerator, model, ema, folder: Path, config: TrainConfig) -> None:
    """folder/transformer (and folder/transformer_ema) in the released layout."""
    export_transformer(accelerator, model, folder / "transformer", lora=config.mode == "lora")
    if ema is not None and accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        with ema_weights(ema, unwrapped):
            export_transformer_unwrapped(unwrapped, folder / "transformer_ema", lora=config.mode == "lora")


def _truncate_log(path: Path, step: int) -> None:
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def _batch_usable(batch: dict, state: TrainState, reasons: Counter, accelerator, config: TrainConfig) -> bool:
    """Count unreadable items on every process; all processes skip a micro-batch together when any has nothing
    left (a lone skip would hang DDP); stop once the bad fraction passes data.max_bad_fraction."""
    for bad in batch["bad"]:
        reasons[bad.reason[:120]] += 1
        logger.warning("cache item %s skipped: %s", bad.id, bad.reason)
    counts = torch.tensor([len(batch["bad"]), len(batch["bad"]) + len(batch["ids"]), int(not batch["ids"])],
                          device=accelerator.device)
    counts = accelerator.reduce(counts, reduction="sum") if accelerator.num_processes > 1 else counts
    state.bad_items += int(counts[0])
    state.items_seen += int(counts[1])
    if state.items_seen >= 20 and state.bad_items / state.items_seen > config.data.max_bad_fraction:
        raise UserError(
            f"{state.bad_items} of {state.items_seen} cache items were unreadable (more than data.max_bad_fraction "
            f"{config.data.max_bad_fraction}); most common: {reasons.most_common(1)[0][0] if reasons else '?'}. "
            "Rerun proteus-id precompute into a fresh folder"
        )
    return int(counts[2]) == 0


def _make_validator(config: TrainConfig, cache: FeatureCache, device, accelerator):
    if not (config.validation.items or config.validation.num_items):
        return None
    if accelerator.distributed_type.name == "FSDP":
        logger.warning("validation videos are skipped under FSDP (the weights are sharded over processes)")
        return None
    from .validation import Validator

    return Validator(config, cache, device) if accelerator.is_main_process else object()


def _validate(validator, accelerator, model, spec, ema, step: int, output: Path) -> None:
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        tracker = None
        if accelerator.trackers:
            tracker = next((t for t in accelerator.trackers if t.name == "tensorboard"), None)
        scheduler = spec.scheduler.__class__.from_config(spec.scheduler.config)
        if ema is not None:
            with ema_weights(ema, unwrapped):
                validator.run(unwrapped, scheduler, step, output / "validation", tracker)
        else:
            validator.run(unwrapped, scheduler, step, output / "validation", tracker)
    accelerator.wait_for_everyone()

