"""The training config (YAML), as dataclasses. Unknown keys and wrong types are errors that name the key.

Every field has the release's value as its default where the release had one (PAPER.md section 7); sizes come
from the model folder and the cache, never from constants. See configs/train/*.yaml and docs/training.md.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import UserError


class ConfigError(UserError):
    """A config key that is unknown, missing or of the wrong type (the message names it)."""


@dataclass
class PrecomputeConfig:
    height: int | None = None
    width: int | None = None
    num_frames: int | None = None
    frame_stride: int = 3
    flow: Literal["dis", "raft"] = "dis"
    flow_options: dict = field(default_factory=dict)
    motion_weight: Literal["released", "clip_normalized", "none"] = "released"
    identity_backend: str | None = None
    identity_prompt_length: int = 32
    latent_sampling: Literal["posterior", "mean"] = "posterior"
    dtype: Literal["fp32", "bf16", "fp16"] = "bf16"
    vae_tiling: bool = False
    shard_size: int = 64
    max_bad_fraction: float = 0.05


@dataclass
class DataConfig:
    cache: str = ""
    manifest: str | None = None  # only precompute reads it
    num_workers: int = 0
    shuffle: bool = True
    max_bad_fraction: float = 0.05  # unreadable cache items tolerated before the run stops
    # a second cache of motion partners, item ids matching `cache` (same clip with only the motion and caption
    # changed; `proteus-id toy render --contrast`): read only when loss.motion_contrast_weight > 0
    partner_cache: str | None = None


@dataclass
class LoraConfig:
    rank: int = 128
    alpha: float = 128.0
    target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])


@dataclass
class EmaConfig:
    enabled: bool = False
    decay: float = 0.9999
    update_every: int = 1


@dataclass
class ConditioningConfig:
    image_noise_log_mean: float = -3.0  # sigma = exp(N(mean, std^2)), the release's image-latent noise
    image_noise_log_std: float = 0.5
    image_dropout: float = 0.05  # zero the image-condition latent
    # latent: the noise is added to the cached posterior draw (no VAE in the step); pixel: the release's exact way,
    # noise on the face crop's pixels, then the VAE (one image encode per sample and step)
    image_noise_space: Literal["latent", "pixel"] = "latent"
    prompt_dropout: float = 0.0  # replace the caption by the empty prompt (teaches the unconditional branch of CFG)
    identity_prompt_dropout: float = 0.0


@dataclass
class LossConfig:
    motion_weight: bool = True  # AML term l + M l (M from the cache)
    face_mask_probability: float = 0.5  # probability of the face-masked average for a step
    # cap on the per-timestep weight 1 / (1 - alphas_cumprod[t]) (null: the release's uncapped weight); see loss.py
    weight_cap: float | None = None
    # share of each batch's timesteps drawn from [late_timestep_from, T) instead of [0, T) (0: the release's uniform
    # draw). Layout and motion are decided at the top of the noise range; see docs/training.md §4
    late_timestep_fraction: float = 0.0
    late_timestep_from: int = 800
    # exclusive upper end of that band (null: T). A band below T, e.g. [100, 500), puts the share f where the face's
    # detail is redrawn from the reference instead of where the layout is decided
    late_timestep_to: int | None = None
    # weight of the squared frame-to-frame change of the x0 error, added per element (0: the release's loss); loss.py
    frame_difference_weight: float = 0.0
    # weight of each clip's frame-difference error divided by its own motion energy (0: off); loss.py. The floor is in
    # the same unit (mean squared latent change per element) and keeps still clips finite
    relative_motion_weight: float = 0.0
    relative_motion_floor: float = 5.0e-4
    # weight of the motion contrast term (0: off): each clip and its motion partner (data.partner_cache) go through
    # the model with the same noise and conditions; the difference of their x0 errors, divided by how much the two
    # clips differ (plus the floor), is added; loss.py
    motion_contrast_weight: float = 0.0
    motion_contrast_floor: float = 5.0e-4
    # weight of the identity feature term (0: off): 1 - cos between a frozen face encoder's embeddings of the face in
    # the decoded x0 estimate and in the decoded true clip, on the rows with t < identity_max_timestep (at higher
    # noise the estimate holds no face yet); training/identity_loss.py
    identity_weight: float = 0.0
    identity_max_timestep: int = 500


@dataclass
class OptimizerConfig:
    lr: float = 3e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 1e-4
    eps: float = 1e-8
    max_grad_norm: float = 1.0


@dataclass
class SchedulerConfig:
    # diffusers.optimization.get_scheduler's names (piecewise_constant needs step rules this config does not carry)
    name: Literal["cosine_with_restarts", "cosine", "linear", "polynomial", "constant", "constant_with_warmup"] = "cosine_with_restarts"
    warmup_steps: int = 200
    num_cycles: int = 1


@dataclass
class CheckpointConfig:
    every_steps: int = 500
    keep_last: int = 3
    export_transformer: bool = True  # write transformer/ (released layout) into every checkpoint


@dataclass
class ValidationConfig:
    every_steps: int = 0  # 0: never during training (a final video is still made when items are given)
    items: list[str] = field(default_factory=list)  # cache item ids; empty: the first `num_items`
    num_items: int = 1
    num_inference_steps: int = 50
    guidance_scale: float = 6.0
    seed: int = 42


@dataclass
class LoggingConfig:
    every_steps: int = 1
    tensorboard: bool = True


@dataclass
class TrainConfig:
    model: str = ""  # base model folder (released layout)
    output_dir: str = ""
    seed: int = 42
    max_steps: int = 8000
    batch_size: int = 2  # per process
    gradient_accumulation_steps: int = 1
    mode: Literal["full", "lora", "new_modules"] = "full"
    mixed_precision: Literal["no", "bf16", "fp16"] = "bf16"
    gradient_checkpointing: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    precompute: PrecomputeConfig = field(default_factory=PrecomputeConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    lr_scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def check(self) -> None:
        required = {"model": self.model, "output_dir": self.output_dir, "data.cache": self.data.cache}
        for key, value in required.items():
            if not value:
                raise ConfigError(f"config key '{key}' is required")
        positive = {"max_steps": self.max_steps, "batch_size": self.batch_size,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps,
                    "checkpoint.keep_last": self.checkpoint.keep_last, "logging.every_steps": self.logging.every_steps}
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"config key '{key}' must be >= 1, got {value}")
        probabilities = {f"conditioning.{k}": getattr(self.conditioning, k) for k in
                         ("image_dropout", "prompt_dropout", "identity_prompt_dropout")}
        probabilities["loss.face_mask_probability"] = self.loss.face_mask_probability
        probabilities["loss.late_timestep_fraction"] = self.loss.late_timestep_fraction
        for key, value in probabilities.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"config key '{key}' is a probability in [0, 1], got {value}")
        for key in ("frame_difference_weight", "late_timestep_from", "relative_motion_weight", "motion_contrast_weight",
                    "identity_weight"):
            if getattr(self.loss, key) < 0:
                raise ConfigError(f"config key 'loss.{key}' must be >= 0, got {getattr(self.loss, key)}")
        for key in ("relative_motion_floor", "motion_contrast_floor", "identity_max_timestep"):
            if getattr(self.loss, key) <= 0:
                raise ConfigError(f"config key 'loss.{key}' must be > 0, got {getattr(self.loss, key)}")
        if self.loss.motion_contrast_weight and not self.data.partner_cache:
            raise ConfigError("config key 'loss.motion_contrast_weight' needs 'data.partner_cache' (the motion partners' cache)")
        if len(self.optimizer.betas) != 2:
            raise ConfigError(f"config key 'optimizer.betas' needs two values, got {self.optimizer.betas}")


# ------------------------------------------------------------------ strict loading


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp, key: str):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin is list:
        if isinstance(value, list):
            return [_convert(v, typing.get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value)]
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return from_dict(tp, value, key)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-6" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is dict:
        if isinstance(value, dict):
            return value
    raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from a dict; unknown keys and wrong types raise ConfigError naming the full key."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"'{prefix}.{unknown[0]}'" if prefix else f"'{unknown[0]}'"
        raise ConfigError(f"unknown config key {where}; known keys{' of ' + repr(prefix) if prefix else ''}: {', '.join(sorted(names))}")
    values = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        values[name] = _convert(value, hints[name], key)
    return cls(**values)


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """YAML file -> TrainConfig (checked). `overrides`: dotted keys -> values applied on top (CLI flags)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(err).split())}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for depth, part in enumerate(parents):
            if node.get(part) is None:  # absent, or an empty section in the YAML
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set '{dotted}': config key '{'.'.join(parents[: depth + 1])}' is not a section")
        node[last] = value
    config = from_dict(TrainConfig, data)
    base = path.resolve().parent
    for attr, holder in (("model", config), ("output_dir", config), ("cache", config.data), ("manifest", config.data),
                         ("partner_cache", config.data)):
        value = getattr(holder, attr)
        if value and not Path(value).is_absolute():  # paths in a config are relative to the config file
            setattr(holder, attr, os.path.normpath(base / value))
    config.check()
    return config


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
