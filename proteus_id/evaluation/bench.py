"""`proteus-id bench`: a model folder and a suite -> every video generated -> `proteus-id evaluate` on them.

    RUN/videos/<identity>__<prompt>.mp4   one per job, written atomically; a finished video is kept and skipped
    RUN/jobs/<job>.json                   per job: status, seconds, the settings used, or why it failed
    RUN/run.json                          the model's identity and the settings every video of RUN was made with
    RUN/manifest.jsonl                    the run manifest (photo, prompt, video + identity and prompt fields)
    RUN/eval/                             per_video.csv, summary.json, report.md, report.html

Processes: under `accelerate launch --num_processes N` each process generates every N-th job, then all of them
evaluate (evaluation is sharded the same way). Rerunning the command resumes both phases; a rerun with another
model (other weights, even at the same path) or other settings is refused, so one RUN never mixes videos.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..pipeline.options import DEFAULT_IDENTITY_GUIDANCE_NEGATIVE
from .config import EvalConfig
from .manifest import write_manifest
from .store import atomic_write_text
from .suite.schema import Job, Suite, load_suite

logger = logging.getLogger("proteus_id")


@dataclass
class GenerationSettings:
    steps: int = 50
    guidance_scale: float = 6.0
    guidance_interval: list[float] | None = None  # [lo, hi]: text guidance only at lo <= t <= hi (None: every step)
    identity_guidance_scale: float = 0.0  # ours, off as released (the pipeline's identity guidance)
    identity_guidance_negative: str = DEFAULT_IDENTITY_GUIDANCE_NEGATIVE
    seed: int = 42  # the release's default; every job uses it, so reruns reproduce videos
    height: int | None = None  # None: the model's own size (transformer config)
    width: int | None = None
    num_frames: int | None = None
    fps: int = 8
    dtype: str = "auto"  # bf16 on a GPU, fp32 on the CPU
    face_backend: str | None = None  # None: the backend the model folder names


def model_identity(model_dir: Path) -> str:
    """Configs in full and each weights file's size and first MiB: retrained or swapped weights change it, a copied
    or moved folder does not; for a 20 GB folder that is a few MiB read per file, not the whole folder."""
    from .metrics.base import file_identity, files_following_links

    digest = hashlib.sha256()
    for file in files_following_links(model_dir):
        digest.update(file.relative_to(model_dir).as_posix().encode())
        digest.update(file.read_bytes() if file.suffix in (".json", ".txt", ".yaml") else file_identity(file).encode())
    return digest.hexdigest()[:16]


def check_run_record(run_dir: Path, model_dir: Path, settings: GenerationSettings, write: bool) -> None:
    """Refuse to add videos to a RUN made by another model or with other settings (a resumed bench would otherwise
    mix the two silently); record them on the first run."""
    record = {"model": str(model_dir), "model_identity": model_identity(model_dir), "settings": asdict(settings)}
    path = run_dir / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            old_settings = dict(old.get("settings") or {})
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError, ValueError) as err:
            raise UserError(f"{path} is unreadable ({err}); delete {run_dir} to start over, or give a new --out")
        defaults = asdict(GenerationSettings())  # a record older than a setting holds its default
        changed = [f"{k} {old_settings.get(k, defaults[k])!r} -> {v!r}" for k, v in record["settings"].items()
                   if old_settings.get(k, defaults[k]) != v]
        if old.get("model_identity") != record["model_identity"]:
            changed.insert(0, f"model weights ({old.get('model')} -> {model_dir})")
        if changed:
            raise UserError(f"{run_dir} holds videos made otherwise ({'; '.join(changed)}); give a new --out, or "
                            "delete that folder to start over")
        return
    if write:
        if any((run_dir / "videos").glob("*.mp4")):
            logger.warning("%s has videos but no run.json (an older bench): assuming they come from %s with these "
                           "settings", run_dir, model_dir)
        atomic_write_text(path, json.dumps(record, indent=1))


def video_path(run_dir: Path, job: Job) -> Path:
    return run_dir / "videos" / f"{job.id}.mp4"


def manifest_rows(suite: Suite, run_dir: Path) -> list[dict[str, Any]]:
    """The run manifest: paths relative to RUN/, identity and prompt fields kept for the report's group tables."""
    rows = []
    for job in suite.jobs():
        ident = job.identity
        row = {
            "image": _relative(ident.image, run_dir),
            "prompt": job.text,
            **({"negative_prompt": job.negative_text} if job.negative_text else {}),
            "video": f"videos/{job.id}.mp4",
            "job": job.id,
            "identity": ident.id,
            "prompt_id": job.prompt.id,
            "category": job.prompt.category,
            "gender": ident.gender,
            "profession": ident.profession,
            "region": ident.region,
        }
        status = run_dir / "jobs" / f"{job.id}.json"
        if status.is_file():
            record = json.loads(status.read_text())
            if record.get("status") == "failed":
                row["generation_error"] = record.get("reason")
        rows.append(row)
    return rows


def _relative(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(Path(path).resolve(), base.resolve())


def _dtype(name: str, device: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


class Generator:
    """The pipeline and the face backend, loaded once per process when there is something to generate."""

    def __init__(self, model_dir: Path, settings: GenerationSettings, device: str):
        from ..identity.backends import backend_for_model, get_backend
        from ..pipeline.pipeline import ProteusIDPipeline

        self.settings, self.device = settings, device
        self.pipe = ProteusIDPipeline.from_pretrained(model_dir, torch_dtype=_dtype(settings.dtype, device)).to(device)
        self.pipe.set_progress_bar_config(disable=True)
        if settings.face_backend:
            face_dir = model_dir / "face_encoder"
            self.backend = get_backend(settings.face_backend, face_dir if face_dir.is_dir() else None, device)
        else:
            self.backend = backend_for_model(model_dir, device)
        self._features: dict[str, Any] = {}

    def features(self, job: Job):
        key = job.identity.id
        if key not in self._features:
            self._features = {key: self.backend.extract(job.identity.image, name=f"identity {key}")}  # one at a time
        return self._features[key]

    def generate(self, job: Job):
        s = self.settings
        feats = self.features(job)
        out = self.pipe(
            image=feats.face_crop, prompt=job.text, negative_prompt=job.negative_text,
            identity_prompt=job.identity.identity_prompt,
            id_cond=feats.id_cond, id_vit_hidden=feats.id_vit_hidden, kps_cond=feats.keypoints,
            num_inference_steps=s.steps, guidance_scale=s.guidance_scale, guidance_interval=s.guidance_interval, seed=s.seed,
            identity_guidance_scale=s.identity_guidance_scale, identity_guidance_negative=s.identity_guidance_negative,
            height=s.height, width=s.width, num_frames=s.num_frames, output_type="np",
        )
        return out.frames[0]


def generate_suite(model_dir: str | Path, suite: Suite, run_dir: Path, settings: GenerationSettings,
                   progress: bool = True) -> dict[str, int]:
    """This process's share of the jobs; finished videos are skipped. Returns counts for this process."""
    from tqdm.auto import tqdm

    from ..pipeline.video import write_video
    from .processes import process_state

    state = process_state()
    jobs = suite.jobs()[state.process_index :: state.num_processes]
    todo = [j for j in jobs if not video_path(run_dir, j).is_file()]
    counts = {"jobs": len(jobs), "existing": len(jobs) - len(todo), "generated": 0, "failed": 0}
    if not todo:
        return counts
    generator = Generator(Path(model_dir), settings, str(state.device))
    bar = tqdm(todo, desc=f"generate [{state.process_index}]" if state.num_processes > 1 else "generate",
               position=state.process_index, disable=not progress, unit="video")
    for job in bar:
        start = time.perf_counter()
        record: dict[str, Any] = {"job": job.id, "settings": asdict(settings), "model": str(model_dir)}
        try:
            frames = generator.generate(job)
        except UserError as err:  # the identity photo: unreadable, no face, features that do not fit the model
            record.update(status="failed", reason=str(err))
            counts["failed"] += 1
            logger.warning("job %s failed: %s", job.id, err)
        else:
            write_video(frames, video_path(run_dir, job), fps=settings.fps)
            record.update(status="ok")
            counts["generated"] += 1
        record["seconds"] = round(time.perf_counter() - start, 2)
        atomic_write_text(run_dir / "jobs" / f"{job.id}.json", json.dumps(record, indent=1))
    bar.close()
    return counts


def run_bench(model_dir: str | Path, suite_path: str | Path, run_dir: str | Path, settings: GenerationSettings | None = None,
              eval_config: EvalConfig | None = None, *, plugins: list[str] | None = None, evaluate: bool = True,
              progress: bool = True):
    """Generate (resumable, sharded), write RUN/manifest.jsonl, evaluate into RUN/eval. Returns the evaluation
    result on the main process (None elsewhere, or when `evaluate` is False)."""

    from .processes import process_state
    from .runner import load_plugins, run_evaluation

    load_plugins(plugins)  # before generation: a plug-in module may register a face backend as well as metrics
    model_dir, run_dir = Path(model_dir), Path(run_dir)
    if not (model_dir / "transformer").is_dir():
        raise UserError(f"{model_dir} is not a model folder (no transformer/); give the folder `proteus-id info` accepts")
    suite = load_suite(suite_path)
    missing = [i for i in suite.identities if not Path(i.image).is_file()]
    if missing:
        names = ", ".join(f"{i.id} ({i.image})" for i in missing[:5])
        raise UserError(f"{len(missing)} identity photos do not exist: {names}; put the photos where the suite says")
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = settings or GenerationSettings()
    state = process_state()
    check_run_record(run_dir, model_dir, settings, write=state.is_main_process)
    state.wait_for_everyone()
    counts = generate_suite(model_dir, suite, run_dir, settings, progress)
    logger.info("process %d: %d jobs, %d already generated, %d generated now, %d failed", state.process_index,
                counts["jobs"], counts["existing"], counts["generated"], counts["failed"])
    state.wait_for_everyone()
    manifest = run_dir / "manifest.jsonl"
    if state.is_main_process:
        write_manifest(manifest_rows(suite, run_dir), manifest)
    state.wait_for_everyone()
    if not evaluate:
        return None
    return run_evaluation(manifest, run_dir / "eval", eval_config or EvalConfig(), progress=progress)
