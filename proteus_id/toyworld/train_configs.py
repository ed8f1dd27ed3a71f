"""The training configs of the toy recipe (for `proteus-id precompute` / `proteus-id train`), one per ablation row.

Layout under a run root (every path in the configs is relative to the config file, so the root can move):

    ROOT/configs/<row>.yaml       this module writes these
    ROOT/models/<variant>/        `proteus-id toy build-model --variant <variant>` (the base weights per row)
    ROOT/data/train/manifest.jsonl  `proteus-id toy render`
    ROOT/data/cache-64x64x17/     `proteus-id precompute --config ROOT/configs/full.yaml` (shared by every row: same
                                  VAE, text encoder and identity encoder)
    ROOT/runs/<row>/              `proteus-id train --config ROOT/configs/<row>.yaml`

Every row has the same budget (steps, batch, optimiser, seed); rows differ in the transformer variant or, for
`no_aml`, in the loss (uniform instead of motion-weighted).
"""

from __future__ import annotations

from pathlib import Path

# row -> (model variant folder, overrides of the loss section)
ROWS = {
    "full": ("full", {}),
    "mif_visual_only": ("mif_visual_only", {}),
    "taii_static": ("taii_static", {}),
    "no_aml": ("full", {"motion_weight": False}),
    "consisid_like": ("consisid_like", {}),
}


def config_text(row: str, max_steps: int = 4000, batch_size: int = 8) -> str:
    variant, loss = ROWS[row]
    loss_lines = "".join(f"  {k}: {str(v).lower()}\n" for k, v in loss.items()) or "  motion_weight: true\n"
    return f"""# Toy recipe, ablation row "{row}" (written by `proteus-id toy configs`; see docs/toyworld.md).
model: ../models/{variant}
output_dir: ../runs/{row}
seed: 42
max_steps: {max_steps}
batch_size: {batch_size}
mode: full
mixed_precision: "no"
gradient_checkpointing: false

data:
  manifest: ../data/train/manifest.jsonl
  cache: ../data/cache-64x64x17
  num_workers: 0

precompute:
  height: 64
  width: 64
  num_frames: 17
  frame_stride: 1
  motion_weight: released
  identity_prompt_length: 32
  dtype: fp32
  shard_size: 256

conditioning:
  prompt_dropout: 0.1
  identity_prompt_dropout: 0.05

loss:
{loss_lines}
optimizer:
  lr: 3.0e-4
  weight_decay: 1.0e-2

lr_scheduler:
  name: cosine_with_restarts
  warmup_steps: 200

ema:
  enabled: true
  decay: 0.999

checkpoint:
  every_steps: 250
  keep_last: 2

validation:
  every_steps: 1000
  num_items: 2
  num_inference_steps: 25
  guidance_scale: 4.0

logging:
  every_steps: 10
  tensorboard: true
"""


def write_configs(root: str | Path, max_steps: int = 4000, batch_size: int = 8) -> list[Path]:
    folder = Path(root) / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in ROWS:
        path = folder / f"{row}.yaml"
        path.write_text(config_text(row, max_steps, batch_size))
        paths.append(path)
    return paths
