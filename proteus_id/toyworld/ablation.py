"""The toy recipe end to end, and the ablation table: `proteus-id toy reproduce --root ROOT`.

Every step is one of the project's own commands, run as a subprocess with its log in ROOT/logs/, and every step
is skipped when its output is already there (each command also resumes by itself), so the same command continues
a killed run:

    render        proteus-id toy render         ROOT/data/train/           training clips of the `train` split
    vae           proteus-id toy train-vae      ROOT/parts/vae/vae/
    decoder       proteus-id toy train-vae --decoder-only-from   ROOT/parts/vae_decoder/vae/  a sharper decoder, same
                                                latent space: trained models decode with it (their caches and
                                                training folders keep the first VAE, whose fingerprint they carry)
    encoder       proteus-id toy train-encoder  ROOT/parts/encoder/face_encoder/
    models        proteus-id toy build-model    ROOT/models/<variant>/      one per model variant, random transformer
    configs       proteus-id toy configs        ROOT/configs/<row>.yaml
    precompute    proteus-id precompute         ROOT/data/cache-64x64x17/   shared by every row
    train         proteus-id train              ROOT/runs/<row>/            the same budget for every row
    suite         proteus-id toy suite          ROOT/suite/                 the 150 evaluation identities
    assemble      (this module)                 ROOT/trained/<row>_s<step>/  the row's parts + its EMA weights at <step>
    bench         proteus-id bench              ROOT/bench/<row>_s<step>/   generation + evaluation with the judges
    baselines     (this module)                 ROOT/bench/<baseline>/      videos that need no model, evaluated alike
    table         (this module)                 ROOT/ablation-s<step>/ablation.{json,md,png}

<step> is the step the rows are compared at (`--eval-step`, default the schedule's end), so comparing the same runs
at another step adds folders instead of mixing videos of two steps in one benchmark.

Baselines: `copy_paste` (the reference crop repeated: perfect identity, no motion), `true_render` (the world's own
render of the prompt with the right person: what a perfect model would make) and `other_identity` (the same
render with another evaluation identity: everything right except the person, the floor of identity similarity) and
`vae_roundtrip` (the true render encoded and decoded by the model's VAE: the ceiling of any model that decodes with
that VAE, so a row's distance to the true renders splits into what the VAE loses and what the transformer does).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .train_configs import ROWS

logger = logging.getLogger("proteus_id")

BASELINES = ("copy_paste", "true_render", "other_identity", "vae_roundtrip")
ROW_LABELS = {
    "full": "Proteus-ID (MIF + TAII + AML)",
    "mif_visual_only": "MIF without identity text",
    "taii_static": "TAII without time modulation",
    "no_aml": "without AML (uniform loss)",
    "consisid_like": "ConsisID-like (no MIF, static resampler)",
    "copy_paste": "copy-paste reference (no motion)",
    "true_render": "true renders (upper bound)",
    "other_identity": "another person (no identity)",
    "vae_roundtrip": "true renders through the VAE (ceiling)",
}
TABLE_METRICS = ("toy_facesim", "toy_text_alignment", "toy_motion_hit", "toy_attribute_hit", "dynamic_degree",
                 "flow_magnitude", "motion_smoothness", "temporal_flicker")
PLOT_METRICS = ("toy_facesim", "toy_text_alignment", "toy_motion_hit", "dynamic_degree", "temporal_flicker")
PLUGIN = "proteus_id.toyworld.judge_metrics"
EVAL_METRICS = "toy_facesim,toy_text,motion"


@dataclass
class ReproduceSettings:
    identities: int = 2000
    clips_per_identity: int = 2
    vae_scale: float = 1.0
    encoder_steps: int | None = None
    max_steps: int = 4000  # the schedule every row follows
    eval_step: int | None = None  # the step every row is compared at (default max_steps): rows stop there, exported
    rows: tuple[str, ...] = tuple(ROWS)
    prompts_per_identity: int = 2
    steps: int = 25
    guidance: float = 4.0
    seed: int = 42
    threads: int = 2


class Recipe:
    def __init__(self, root: str | Path, settings: ReproduceSettings):
        self.root = Path(root).resolve()
        self.s = settings
        unknown = [r for r in settings.rows if r not in ROWS]
        if unknown:
            raise UserError(f"unknown ablation row(s) {', '.join(unknown)}; rows are {', '.join(ROWS)}")

    # ------------------------------------------------------------------ running commands
    def command(self, name: str, *argv: str) -> None:
        """Run `proteus-id ARGV` with its output in ROOT/logs/NAME.log; a failure stops the recipe."""
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(self.s.threads)}
        logger.info("[%s] proteus-id %s", name, " ".join(argv))
        with open(logs / f"{name}.log", "a") as log:
            code = subprocess.call([sys.executable, "-m", "proteus_id.cli.main", *argv], stdout=log,
                                   stderr=subprocess.STDOUT, env=env)
        if code != 0:
            raise UserError(f"step {name} failed (exit code {code}); see {logs / f'{name}.log'} and run again to resume")

    def threads(self) -> list[str]:
        return ["--threads", str(self.s.threads)]

    # ------------------------------------------------------------------ paths
    @property
    def vae_dir(self) -> Path:
        return self.root / "parts" / "vae" / "vae"

    @property
    def decoder_dir(self) -> Path:
        return self.root / "parts" / "vae_decoder" / "vae"

    @property
    def face_encoder_dir(self) -> Path:
        return self.root / "parts" / "encoder" / "face_encoder"

    @property
    def step(self) -> int:
        return self.s.eval_step or self.s.max_steps

    def trained_model(self, row: str) -> Path:
        """A model folder of the row: its base folder's parts with the trained (EMA) transformer."""
        return self.root / "trained" / f"{row}_s{self.step}"

    # ------------------------------------------------------------------ steps
    def render(self) -> None:
        if (self.root / "data" / "train" / "manifest.jsonl").is_file():
            return
        self.command("render", "toy", "render", "--out", str(self.root / "data" / "train"), "--identities",
                     str(self.s.identities), "--clips-per-identity", str(self.s.clips_per_identity), *self.threads())

    def parts(self) -> None:
        if not (self.vae_dir / "config.json").is_file():
            self.command("vae", "toy", "train-vae", "--out", str(self.vae_dir.parent), "--scale", str(self.s.vae_scale),
                         *self.threads())
        if not (self.decoder_dir / "config.json").is_file():
            self.command("decoder", "toy", "train-vae", "--out", str(self.decoder_dir.parent), "--decoder-only-from",
                         str(self.vae_dir), *self.threads())
        if not (self.face_encoder_dir / "identity_spec.json").is_file():
            steps = ["--steps", str(self.s.encoder_steps)] if self.s.encoder_steps else []
            self.command("encoder", "toy", "train-encoder", "--out", str(self.face_encoder_dir.parent), *steps,
                         *self.threads())

    def models(self) -> None:
        for variant in sorted({ROWS[row][0] for row in self.s.rows} | {"full"}):
            if not (self.root / "models" / variant / "transformer" / "config.json").is_file():
                self.command(f"model-{variant}", "toy", "build-model", "--out", str(self.root / "models" / variant),
                             "--vae", str(self.vae_dir), "--face-encoder", str(self.face_encoder_dir),
                             "--variant", variant)
        self.command("configs", "toy", "configs", "--root", str(self.root), "--max-steps", str(self.s.max_steps))

    def precompute(self) -> None:
        self.command("precompute", "precompute", "--config", str(self.root / "configs" / "full.yaml"))

    def train(self, row: str) -> None:
        """Train the row to the compared step (the same budget for every row) and link its EMA weights."""
        step = self.step
        stop = [] if step >= self.s.max_steps else ["--stop-at-step", str(step), "--export-at-stop"]
        run = self.root / "runs" / row
        export = (run / f"step-{step:06d}" if stop else run) / "transformer_ema"
        if not (export / "config.json").is_file():
            self.command(f"train-{row}", "train", "--config", str(self.root / "configs" / f"{row}.yaml"), *stop)
        assemble_trained_model(self.root / "models" / ROWS[row][0], export, self.trained_model(row), vae=self.decoder_dir)

    def suite(self) -> Path:
        path = self.root / "suite" / "suite.jsonl"
        if not path.is_file():
            self.command("suite", "toy", "suite", "--out", str(path.parent), "--prompts-per-identity",
                         str(self.s.prompts_per_identity))
        return path

    def bench(self, row: str, suite: Path) -> None:
        self.command(f"bench-{row}", "bench", "--model", str(self.trained_model(row)), "--suite", str(suite),
                     "--out", str(bench_dir(self.root, row, self.step)), "--steps", str(self.s.steps), "--guidance-scale",
                     str(self.s.guidance), "--seed", str(self.s.seed), "--plugin", PLUGIN, "--metrics", EVAL_METRICS,
                     "--no-progress")

    def baseline(self, kind: str, suite: Path) -> None:
        run = bench_dir(self.root, kind, self.step)
        manifest = write_baseline_videos(kind, suite, run, vae=self.decoder_dir if kind == "vae_roundtrip" else None)
        self.command(f"eval-{kind}", "evaluate", "--manifest", str(manifest), "--out", str(run / "eval"),
                     "--plugin", PLUGIN, "--metrics", EVAL_METRICS, "--no-progress")

    def run(self) -> Path:
        self.render()
        self.parts()
        self.models()
        self.precompute()
        for row in self.s.rows:
            self.train(row)
        suite = self.suite()
        for row in self.s.rows:
            self.bench(row, suite)
        for kind in BASELINES:
            self.baseline(kind, suite)
        rows = [*self.s.rows, *BASELINES]
        return write_table({row: bench_dir(self.root, row, self.step) / "eval" / "summary.json" for row in rows},
                           self.root / f"ablation-s{self.step}", budget=self.budget(rows))

    def budget(self, rows: list[str]) -> dict:
        """The training budget every row shared (from the configs) and the sampling its benches ran (from their
        job records, so the table states what was run, not this command's defaults)."""
        cfg = rows_config(self.root)
        benches = {row: bench_dir(self.root, row, self.step) for row in rows}
        return {"max_steps": cfg.get("max_steps"), "compared_at_step": self.step,
                "batch_size": cfg.get("batch_size"), "seed": cfg.get("seed"), **sampling_budget(benches)}


def rows_config(root: Path) -> dict:
    """ROOT/configs/full.yaml, whose schedule, batch and seed every row shares; {} before `toy configs` wrote it."""
    import yaml

    path = Path(root) / "configs" / "full.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def bench_dir(root: Path, row: str, step: int) -> Path:
    """ROOT/bench/<row>_s<step> for a trained row, ROOT/bench/<baseline> for a baseline (no step: no training)."""
    return Path(root) / "bench" / (f"{row}_s{step}" if row in ROWS else row)


def assemble_trained_model(base: Path, transformer: Path, out: Path, vae: Path | None = None) -> Path:
    """`out` = links to `base`'s components + the trained transformer (a model folder `bench` accepts); `vae`, when
    given, replaces the base's VAE (a decoder fine-tuned on the same latent space)."""
    if not (transformer / "config.json").is_file():
        raise UserError(f"{transformer} holds no trained transformer; train the row first")
    out.mkdir(parents=True, exist_ok=True)
    parts = {name: base / name for name in ("tokenizer", "text_encoder", "vae", "scheduler", "face_encoder",
                                             "model_index.json")}
    parts["transformer"] = transformer
    if vae is not None and (vae / "config.json").is_file():
        parts["vae"] = vae
    for name, target in parts.items():
        link = out / name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(target, out), link)
    return out


# ---------------------------------------------------------------------- baselines


def baseline_frames(kind: str, identity_number: int, prompt: str, reference: np.ndarray, world_seed: int,
                    other_number: int | None = None, vae=None) -> np.ndarray:
    """uint8 (17, 64, 64, 3) frames of one baseline video (`vae`: a loaded VAE, for `vae_roundtrip` only)."""
    from .captions import parse_prompt
    from .traits import Scene, sample_identity
    from .world import FRAME_SIZE, NUM_FRAMES, ClipSpec, render_clip

    if kind == "copy_paste":
        from PIL import Image

        still = np.asarray(Image.fromarray(reference).convert("RGB").resize((FRAME_SIZE, FRAME_SIZE)))
        return np.repeat(still[None], NUM_FRAMES, axis=0)
    wanted = parse_prompt(prompt)
    missing = [k for k in ("garment", "clothes_colour", "background", "lighting", "motion") if k not in wanted]
    if missing:
        raise UserError(f"the prompt {prompt!r} does not name the world's {', '.join(missing)}")
    scene = Scene(wanted["garment"], wanted["clothes_colour"], wanted.get("hat", "none"),
                  wanted.get("hat_colour", "none"), wanted["background"], wanted["lighting"], wanted["motion"],
                  wanted.get("speed", "normal"))
    number = other_number if kind == "other_identity" else identity_number
    spec = ClipSpec(sample_identity(number, world_seed), scene, prompt, "", clip_index=90_000, world_seed=world_seed)
    frames = render_clip(spec).frames
    if kind == "vae_roundtrip":
        if vae is None:
            raise UserError("the vae_roundtrip baseline needs the model's VAE")
        return vae_roundtrip(frames, vae)
    return frames


def vae_roundtrip(frames: np.ndarray, vae) -> np.ndarray:
    """uint8 (F, H, W, 3) -> the same frames encoded (posterior mean) and decoded by a CogVideoX VAE."""
    import torch

    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.no_grad():
        decoded = vae.decode(vae.encode(pixels).latent_dist.mean).sample[0].permute(1, 2, 3, 0)
    return ((decoded.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def write_baseline_videos(kind: str, suite_path: Path, run: Path, vae: Path | None = None) -> Path:
    """Videos of a baseline for every job of the suite (kept when already there) and their run manifest; `vae` is the
    VAE folder the `vae_roundtrip` baseline encodes and decodes with."""
    from PIL import Image

    from ..evaluation.bench import manifest_rows, video_path
    from ..evaluation.manifest import write_manifest
    from ..evaluation.suite.schema import load_suite
    from ..pipeline.video import write_video
    from .traits import DEFAULT_WORLD_SEED

    if kind not in BASELINES:
        raise UserError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
    suite = load_suite(suite_path)
    numbers = sorted({int(i.id[4:]) for i in suite.identities})
    loaded_vae = None
    if kind == "vae_roundtrip":
        if vae is None or not (Path(vae) / "config.json").is_file():
            raise UserError(f"the vae_roundtrip baseline needs a VAE folder (config.json), got {vae}")
        from diffusers import AutoencoderKLCogVideoX

        loaded_vae = AutoencoderKLCogVideoX.from_pretrained(str(vae)).eval()
    for job in suite.jobs():
        path = video_path(run, job)
        if path.is_file():
            continue
        number = int(job.identity.id[4:])  # "evalNNN"
        other = numbers[(numbers.index(number) + len(numbers) // 2) % len(numbers)]
        reference = np.asarray(Image.open(job.identity.image).convert("RGB"))
        frames = baseline_frames(kind, number, job.text, reference, DEFAULT_WORLD_SEED, other, vae=loaded_vae)
        write_video(frames, path, fps=8)  # as `bench` writes generated videos
    manifest = run / "manifest.jsonl"
    write_manifest(manifest_rows(suite, run), manifest)
    return manifest


# ---------------------------------------------------------------------- the table


def load_summaries(paths: dict[str, Path]) -> dict[str, dict]:
    out = {}
    for row, path in paths.items():
        if not Path(path).is_file():
            raise UserError(f"no evaluation summary for row {row} at {path}; run its bench first")
        out[row] = json.loads(Path(path).read_text())
    return out


def write_table(paths: dict[str, Path], out_dir: Path, budget: dict | None = None) -> Path:
    """ablation.json (every row's mean and 95% interval per metric), ablation.md (the table) and ablation.png."""
    from ..atomic import write_json_atomic, write_text_atomic

    summaries = load_summaries(paths)
    table = {row: {m: _stats(s, m) for m in TABLE_METRICS} for row, s in summaries.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "ablation.json", {"budget": budget or {}, "rows": table,
                                                  "videos": {r: s["counts"] for r, s in summaries.items()}})
    lines = ["| row | " + " | ".join(TABLE_METRICS) + " |", "|---|" + "---|" * len(TABLE_METRICS)]
    for row, stats in table.items():
        cells = [_cell(stats[m]) for m in TABLE_METRICS]
        lines.append(f"| {ROW_LABELS.get(row, row)} | " + " | ".join(cells) + " |")
    note = ("Means over the suite's videos, 95% bootstrap interval of the mean in brackets. toy_* metrics are the "
            "world's judges (independent of the conditioning encoder); motion metrics are OpenCV DIS flow.")
    if budget:
        note += " Budget: " + ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None) + "."
    paired = paired_differences({row: Path(path).with_name("per_video.csv") for row, path in paths.items()})
    if paired:
        write_json_atomic(out_dir / "ablation_paired.json", paired)
        lines += ["", "Difference from the full model on the same videos (same identity, prompt and seed; row minus "
                  "full, paired 95% bootstrap interval; an interval that excludes 0 is a difference this benchmark "
                  "resolves):", "", "| row | " + " | ".join(PAIRED_METRICS) + " |",
                  "|---|" + "---|" * len(PAIRED_METRICS)]
        for row, stats in paired.items():
            lines.append(f"| {ROW_LABELS.get(row, row)} | " + " | ".join(_cell(stats[m]) for m in PAIRED_METRICS) + " |")
    write_text_atomic(out_dir / "ablation.md", "\n".join(lines) + "\n\n" + note + "\n")
    plot_table(table, out_dir / "ablation.png")
    return out_dir


PAIRED_METRICS = ("toy_facesim", "toy_text_alignment", "toy_motion_hit", "flow_magnitude", "temporal_flicker")


def paired_differences(per_video: dict[str, Path], reference: str = "full", rows: Collection[str] = ROWS,
                       metrics: tuple[str, ...] | None = None) -> dict[str, dict]:
    """Each of `rows` (default: the ablation rows) minus `reference`, video by video (matched on the suite's job
    id): the rows share identities, prompts and seeds, so the paired interval resolves differences the rows' own
    intervals hide. Jobs are taken in sorted order: the seeded bootstrap then gives the same interval in every
    process (a set's order changes with Python's string hashing)."""
    import csv

    from ..evaluation.summary import bootstrap_interval

    def read(path: Path) -> dict[str, dict]:
        with open(path, newline="") as f:
            return {r["job"]: r for r in csv.DictReader(f) if r.get("status") == "ok" and r.get("job")}

    if reference not in per_video or not per_video[reference].is_file():
        return {}
    base = read(per_video[reference])
    out = {}
    for row, path in per_video.items():
        if row == reference or row not in rows or not path.is_file():
            continue
        other = read(path)
        out[row] = {}
        for metric in metrics or PAIRED_METRICS:
            diffs = [float(other[j][metric]) - float(base[j][metric]) for j in sorted(base.keys() & other.keys())
                     if base[j].get(metric) not in (None, "") and other[j].get(metric) not in (None, "")]
            if diffs:
                out[row][metric] = {"mean": float(np.mean(diffs)), "ci95": list(bootstrap_interval(np.array(diffs))),
                                    "n": len(diffs)}
            else:
                out[row][metric] = {"mean": None, "ci95": None, "n": 0}
    return out


def bench_sampling(bench_dir: Path) -> dict | None:
    """The sampling settings a row's videos were made with, from its bench's job records (None: no record)."""
    first = min((Path(bench_dir) / "jobs").glob("*.json"), default=None)
    return json.loads(first.read_text()).get("settings") if first else None


def sampling_budget(benches: dict[str, Path]) -> dict:
    """Sampling steps / guidance / seed shared by the model rows' benches ({row: bench folder}); a UserError if
    the rows differ (an ablation compares rows sampled the same way)."""
    found = {r: bench_sampling(path) for r, path in benches.items() if r in ROWS}
    found = {r: s for r, s in found.items() if s is not None}
    keys = ("steps", "guidance_scale", "seed")
    distinct = {tuple(s.get(k) for k in keys) for s in found.values()}
    if len(distinct) > 1:
        detail = "; ".join(f"{r}: " + ", ".join(f"{k} {s.get(k)}" for k in keys) for r, s in found.items())
        raise UserError(f"the rows were sampled with different settings ({detail}); rerun their benches alike")
    if not distinct:
        return {}
    steps, guidance, seed = distinct.pop()
    return {"sampling_steps": steps, "guidance": guidance, "sampling_seed": seed}


def _stats(summary: dict, metric: str) -> dict:
    s = summary.get("metrics", {}).get(metric, {})
    return {"mean": s.get("mean"), "ci95": s.get("ci95"), "n": s.get("n", 0)}


def _cell(stats: dict) -> str:
    if stats["mean"] is None:
        return "n/a"
    lo, hi = stats["ci95"]
    return f"{stats['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def plot_table(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from ..atomic import atomic_path

    rows = list(table)
    fig, axes = plt.subplots(1, len(PLOT_METRICS), figsize=(3.2 * len(PLOT_METRICS), 0.42 * len(rows) + 1.4),
                             sharey=True)
    colours = ["#3b6fb6" if r in ROWS else "#9a9a9a" for r in rows]
    y = np.arange(len(rows))
    for ax, metric in zip(axes, PLOT_METRICS):
        means = np.array([table[r][metric]["mean"] if table[r][metric]["mean"] is not None else np.nan for r in rows])
        lo = np.array([table[r][metric]["ci95"][0] if table[r][metric]["ci95"] else np.nan for r in rows])
        hi = np.array([table[r][metric]["ci95"][1] if table[r][metric]["ci95"] else np.nan for r in rows])
        ax.barh(y, means, color=colours, xerr=[means - lo, hi - means], capsize=2)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # fewer ticks: neighbouring panels' end labels collided
    axes[0].set_yticks(y, [ROW_LABELS.get(r, r) for r in rows])
    axes[0].invert_yaxis()  # first row on top (the axes share y)
    fig.tight_layout(w_pad=1.2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
