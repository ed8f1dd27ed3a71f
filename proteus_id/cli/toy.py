"""`proteus-id toy ...`: the procedural identity world and the recipe of the shipped default model.

    proteus-id toy render --out DIR [--identities N --clips-per-identity K]   training clips (mp4) + manifest v1
                          [--contrast opposite]                              ... or their motion partners (same ids)
    proteus-id toy sheet --out sheet.png                                      a contact sheet of the world
    proteus-id toy train-vae --out DIR                                        the CogVideoX VAE of the world
    proteus-id toy train-encoder --out DIR                                    the identity encoder (face backend "toyworld")
    proteus-id toy train-judges --out DIR                                     identity / attribute / motion judges
    proteus-id toy build-model --out DIR --vae V --face-encoder E [--variant full]   a model folder to train
    proteus-id toy configs --root DIR                                        precompute/train configs of the recipe
    proteus-id toy suite --out DIR                                           benchmark suite of the 150 evaluation identities
    proteus-id toy ship --model DIR --transformer DIR [--judges DIR]        copy the result into proteus_id/assets/
    proteus-id toy reproduce --root DIR                                      all of the above + the ablation table

Each training command resumes from its checkpoint when run again with the same --out.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="toy_command", metavar="SUBCOMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--world-seed", type=int, default=None, help="seed of the world (default: the shipped world's)")
    common.add_argument("--threads", type=int, default=2, help="torch threads (keep 1-2 on shared machines)")

    p = sub.add_parser("render", parents=[common], help="render training clips (mp4) and a manifest v1")
    p.add_argument("--out", required=True, help="output folder (manifest.jsonl, videos/, refs/)")
    p.add_argument("--split", default="train", help="identity split: train (default), eval, judge_val")
    p.add_argument("--identities", type=int, default=3000, help="number of identities of the split")
    p.add_argument("--clips-per-identity", type=int, default=2)
    p.add_argument("--first-identity", type=int, default=0, help="skip this many identities of the split")
    p.add_argument("--contrast", choices=("opposite", "still"), default=None,
                   help="render each clip's motion partner instead (same clip id, only the motion changed, as "
                        "toy suite --negative writes it; still clips skipped): for loss.motion_contrast_weight")

    p = sub.add_parser("subset", parents=[common],
                       help="a manifest of the face-level motion clips and every N-th body-motion clip (walks, "
                            "closer / away), beside the rendered one")
    p.add_argument("--manifest", required=True, help="manifest.jsonl written by toy render")
    p.add_argument("--name", required=True, help="file name of the subset, written beside --manifest")
    p.add_argument("--body-every", type=int, required=True, help="keep every N-th body-motion clip (1: all)")

    p = sub.add_parser("sheet", parents=[common], help="contact sheet: reference + frames of a few clips")
    p.add_argument("--out", required=True, help="PNG path")
    p.add_argument("--rows", type=int, default=11)

    p = sub.add_parser("train-vae", parents=[common], help="train the world's CogVideoX VAE")
    p.add_argument("--out", required=True, help="run folder (checkpoint, losses.jsonl, vae/, vae_metrics.json)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every phase's step count (0.01 for a smoke run)")
    p.add_argument("--latent-noise", type=float, default=0.0,
                   help="with --decoder-only-from: train the decoder on latents with noise up to this share of their std")
    p.add_argument("--decoder-only-from", metavar="VAE_DIR",
                   help="fine-tune only the decoder of this finished VAE (latent space and caches unchanged)")

    p = sub.add_parser("train-encoder", parents=[common], help="train the identity encoder (face backend 'toyworld')")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=None)

    p = sub.add_parser("train-judges", parents=[common], help="train the world's judges (identity, attributes, motion)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--only", choices=["locator", "identity", "attributes", "motion"], default=None)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every judge's step count")


    p = sub.add_parser("build-model", parents=[common], help="assemble a model folder (transformer freshly initialised)")
    p.add_argument("--out", required=True)
    p.add_argument("--vae", required=True, help="the VAE folder written by train-vae (RUN/vae)")
    p.add_argument("--face-encoder", required=True, help="the face_encoder folder written by train-encoder")
    p.add_argument("--variant", default="full", help="full, mif_visual_only, taii_static, consisid_like")
    p.add_argument("--seed", type=int, default=42, help="initialisation seed of the transformer")
    p.add_argument("--absolute-positions", action="store_true",
                   help="add the release's absolute 3D position table to the rotary embeddings "
                        "(use_learned_positional_embeddings; fixes the size to 64x64; see docs/toyworld.md)")

    p = sub.add_parser("halve-patches", parents=[common],
                       help="a trained transformer with 1x1 instead of 2x2 patches, to fine-tune (docs/toyworld.md)")
    p.add_argument("--transformer", required=True, help="trained transformer folder (config.json + safetensors)")
    p.add_argument("--out", required=True, help="output transformer folder")

    p = sub.add_parser("add-blocks", parents=[common],
                       help="a trained transformer with more blocks, zero-gated so it starts as the same function")
    p.add_argument("--transformer", required=True, help="trained transformer folder (config.json + safetensors)")
    p.add_argument("--out", required=True, help="output transformer folder")
    p.add_argument("--new-layers", type=int, default=4, help="blocks to add, a multiple of cross_attn_interval")

    p = sub.add_parser("configs", parents=[common], help="write the recipe's precompute/train configs under --root")
    p.add_argument("--root", required=True, help="run root (models/, data/, runs/ live under it)")
    p.add_argument("--max-steps", type=int, default=4000)

    p = sub.add_parser("ship", parents=[common], help="copy a trained model, example faces and judges into the package")
    p.add_argument("--model", help="the model folder that was trained (ROOT/models/full)")
    p.add_argument("--transformer", help="the trained transformer folder (e.g. ROOT/runs/full/transformer_ema)")
    p.add_argument("--card", help="model card (README.md) to put in the model folder")
    p.add_argument("--judges", help="judges folder written by train-judges (RUN/judges)")
    p.add_argument("--faces", action="store_true", help="(re)write the example reference faces")
    p.add_argument("--steps", type=int, help="recommended sampling steps, written into model_index.json")
    p.add_argument("--guidance", type=float, help="recommended text guidance, written into model_index.json")
    p.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                   help="recommended guidance interval (timesteps), written into model_index.json")
    p.add_argument("--motion-contrast", choices=("off", "still", "opposite"),
                   help="recommended negative prompt when none is given: the prompt with its motion held still or "
                        "mirrored (written into model_index.json)")
    p.add_argument("--identity-guidance", type=float,
                   help="recommended identity guidance (against the zeroed face latent), written into model_index.json")
    p.add_argument("--half", action="store_true",
                   help="store the transformer in float16 (half the bytes; loaded back to float32 on the CPU)")

    p = sub.add_parser("reproduce", parents=[common],
                       help="the whole recipe (data, parts, every ablation row, benchmarks) and the ablation table")
    p.add_argument("--root", required=True, help="run root: data/, parts/, models/, runs/, bench/, ablation/, logs/")
    p.add_argument("--rows", help="comma-separated ablation rows (default: all)")
    p.add_argument("--max-steps", type=int, default=4000, help="training schedule of every row (the same budget)")
    p.add_argument("--eval-step", type=int, help="compare every row at this step of the schedule (default: max-steps)")
    p.add_argument("--identities", type=int, default=2000, help="training identities (2 clips each)")
    p.add_argument("--vae-scale", type=float, default=1.0, help="multiply the VAE's step counts")
    p.add_argument("--steps", type=int, default=25, help="sampling steps in the benchmark")
    p.add_argument("--guidance", type=float, default=4.0, help="text guidance in the benchmark")
    p.add_argument("--prompts-per-identity", type=int, default=2)

    p = sub.add_parser("ablation-table", parents=[common], help="the ablation table and plot from finished benchmarks")
    p.add_argument("--root", required=True,
                   help="run root of `toy reproduce` (reads ROOT/bench/<row>_s<step>/eval/summary.json and the baselines)")
    p.add_argument("--out", help="output folder (default ROOT/ablation-s<step>)")
    p.add_argument("--eval-step", type=int,
                   help="the step the rows were compared at (default: the schedule's end, max_steps of ROOT/configs/full.yaml)")

    p = sub.add_parser("suite", parents=[common], help="Proteus-Bench suite of the 150 evaluation identities")
    p.add_argument("--out", required=True)
    p.add_argument("--prompts-per-identity", type=int, default=2)
    p.add_argument("--negative", choices=("none", "still", "opposite"), default="none",
                   help="per-prompt negative prompts: the same caption with the motion held still, or mirrored for "
                        "turns, approaches and walks (still for the rest); used at a guidance scale above 1")


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(max(1, args.threads))
    from ..toyworld import recipe

    return recipe.run_toy_command(args)
