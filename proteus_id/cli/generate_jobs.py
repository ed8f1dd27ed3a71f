"""What `proteus-id generate` checks before it loads any weights: the model's geometry, the numbers, the jobs.

A job is one video: a photo (or precomputed face features), a prompt, an optional identity prompt and seed, and an
output path. `--batch JOBS.jsonl` holds one job per line as a JSON object with the keys below (paths relative to
the jobs file's folder; blank lines and lines starting with '#' are skipped):

    {"image": "faces/ana.jpg", "prompt": "...", "identity_prompt": "...", "seed": 7, "out": "videos/ana.mp4"}

`face_features` may replace `image` (a file written by `IdentityFeatures.save`); `negative_prompt` replaces
`--negative-prompt` for that job. Unknown keys are an error, not ignored, so a typo ("promt") cannot silently drop
a prompt.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..pipeline.folder import ModelFolder, ModelFolderError
from ..pipeline.options import DEFAULT_IDENTITY_GUIDANCE_NEGATIVE, IDENTITY_GUIDANCE_NEGATIVES

JOB_KEYS = {"image", "face_features", "prompt", "identity_prompt", "negative_prompt", "seed", "out"}
MAX_SEED = 2**63 - 1


@dataclass
class ModelGeometry:
    """Sizes a model folder accepts, read from its config files (no weights)."""

    spatial: int  # height/width multiple: VAE downscale x transformer patch
    temporal: int  # frames must be temporal * k + 1 (and 2 * temporal * k + 1 without temporal patching)
    patch_size_t: int | None
    default_height: int
    default_width: int
    default_frames: int
    fixed_size: bool = False  # learned positional embeddings (the released 5B-I2V): only the trained height x width


def read_geometry(folder: ModelFolder) -> ModelGeometry:
    vae = _read_json(folder.found["vae"] / "config.json")
    transformer = _read_json(folder.found["transformer"] / "config.json")
    scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
    temporal = int(vae.get("temporal_compression_ratio", 4))
    patch = int(transformer.get("patch_size", 2))
    return ModelGeometry(
        spatial=scale * patch,
        temporal=temporal,
        patch_size_t=transformer.get("patch_size_t"),
        default_height=int(transformer.get("sample_height", 60)) * scale,
        default_width=int(transformer.get("sample_width", 90)) * scale,
        default_frames=int(transformer.get("sample_frames", 49)),
        fixed_size=bool(transformer.get("use_learned_positional_embeddings", False)),
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{path} is not readable JSON ({err}); the model folder is damaged") from err


def check_video_size(height: int, width: int, frames: int, geometry: ModelGeometry) -> None:
    m, t = geometry.spatial, geometry.temporal
    if height <= 0 or width <= 0 or height % m or width % m:
        raise UserError(f"--height and --width must be positive multiples of {m} for this model, got {height}x{width} "
                        f"(e.g. {max(m, height // m * m)}x{max(m, width // m * m)})")
    if geometry.fixed_size and (height, width) != (geometry.default_height, geometry.default_width):
        raise UserError(f"this model has learned positional embeddings for {geometry.default_height}x{geometry.default_width} "
                        f"only (CogVideoX-5B-I2V), got {height}x{width}: leave out --height/--width")
    from ..pipeline.pipeline import frame_count_error  # the pipeline's own rule, checked before any weights load

    error = frame_count_error(frames, t, geometry.patch_size_t)
    if error:
        raise UserError("--frames: " + error.replace("num_frames", "the frame count"))


MOTION_CONTRASTS = ("off", "still", "opposite")  # the negative prompt made from the prompt itself (toy world)
RELEASED_DEFAULTS = {"steps": 50, "guidance": 6.0, "fps": 8}  # the release's inference settings (PAPER.md section 8)


def fill_generation_defaults(args, folder: ModelFolder) -> None:
    """Settings the user left out come from the model's `generation_defaults` in model_index.json (a small model
    may want fewer steps or less guidance than the release), else from the release's defaults."""
    recommended = folder.model_index.get("generation_defaults") or {}
    for name, released in RELEASED_DEFAULTS.items():
        if getattr(args, name, None) is None:
            setattr(args, name, type(released)(recommended.get(name, released)))
    # text guidance only at lo <= t <= hi (none as released: guidance at every step)
    if getattr(args, "guidance_interval", None) is None and recommended.get("guidance_interval") is not None:
        args.guidance_interval = [float(x) for x in recommended["guidance_interval"]]
    if getattr(args, "motion_contrast", None) is None:
        args.motion_contrast = recommended.get("motion_contrast", "off")
    # identity guidance (ours; off as released) and what its negative prediction lacks
    if getattr(args, "identity_guidance", None) is None:
        args.identity_guidance = float(recommended.get("identity_guidance", 0.0))
    if getattr(args, "identity_guidance_negative", None) is None:
        args.identity_guidance_negative = recommended.get("identity_guidance_negative", DEFAULT_IDENTITY_GUIDANCE_NEGATIVE)
    check_identity_guidance(args.identity_guidance, args.identity_guidance_negative)
    if args.motion_contrast not in MOTION_CONTRASTS:
        raise UserError(f"motion contrast must be one of {', '.join(MOTION_CONTRASTS)}, got {args.motion_contrast!r}")


def negative_prompt_for(prompt: str, given: str | None, motion_contrast: str = "off") -> str:
    """The negative prompt of a job: the one given (the job's, else --negative-prompt); with none given and a motion
    contrast on, the prompt itself with its motion held still or mirrored (`toyworld.captions.contrast_prompt`: it
    reads the shipped toy model's vocabulary, so a prompt naming none of its motions is its own negative and
    guidance changes nothing); else empty, as released."""
    if given:
        return given
    if motion_contrast == "off":
        return ""
    from ..toyworld.captions import contrast_prompt

    return contrast_prompt(prompt, motion_contrast)


def check_guidance_interval(interval) -> list[float] | None:
    """None, or [lo, hi] with 0 <= lo <= hi (timesteps; `--guidance-interval 0 1000` guides every step)."""
    if interval is None:
        return None
    from ..pipeline.pipeline import check_guidance_interval as pipeline_check

    try:
        return list(pipeline_check(interval))
    except ValueError as err:
        raise UserError(f"--guidance-interval: {err}".replace("guidance_interval ", "")) from None


def check_identity_guidance(scale: float, negative: str) -> None:
    if not scale >= 0:  # also catches nan
        raise UserError(f"--identity-guidance must be >= 0 (0 turns it off), got {scale}")
    if negative not in IDENTITY_GUIDANCE_NEGATIVES:
        raise UserError(f"--identity-guidance-negative must be one of {', '.join(IDENTITY_GUIDANCE_NEGATIVES)}, got {negative!r}")


def check_numbers(steps: int, guidance: float, fps: int) -> None:
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    if not guidance >= 0:  # also catches nan
        raise UserError(f"--guidance must be >= 0 (6.0 as released; 1.0 or less turns guidance off), got {guidance}")
    if fps < 1:
        raise UserError(f"--fps must be at least 1, got {fps}")


def check_prompt(text: str | None, what: str = "--prompt") -> str:
    if text is None or not text.strip():
        if "identity" in what:
            raise UserError(f"{what} is empty: describe the person's appearance in words, or leave it out to derive one")
        raise UserError(f"{what} is missing or empty: describe the video (scene, action, camera) in words")
    return " ".join(text.split())


def check_seed(seed) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def random_seed() -> int:
    return secrets.randbelow(2**32)


def check_output(path: str | os.PathLike | None, what: str = "--out", suffix: str = ".mp4") -> Path:
    """A path we can write: the right suffix, not a folder, its nearest existing parent a writable folder."""
    if not path:
        raise UserError(f"{what} is missing: name the {suffix} file to write")
    out = Path(path)
    if out.suffix.lower() != suffix:
        why = " (the video is H.264 in an mp4 container)" if suffix == ".mp4" else ""
        raise UserError(f"{what} {out} must end in {suffix}{why}")
    if out.is_dir():
        raise UserError(f"{what} {out} is a folder; give a file name ending in {suffix}")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{what} {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{what} {out}: no permission to write in {parent}")
    return out


@dataclass
class Job:
    label: str  # "job 2 (line 3 of jobs.jsonl)" or "--image me.jpg"
    prompt: str | None
    out: str | None
    image: str | None = None
    face_features: str | None = None
    identity_prompt: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None  # None: the command's --negative-prompt


def read_jobs(path: str | os.PathLike) -> tuple[list[Job], list[tuple[str, str]]]:
    """Jobs of a JSONL file, plus (label, reason) for lines that are not jobs. The file itself must be readable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--batch {path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--batch {path} is not a readable UTF-8 text file ({err.__class__.__name__})") from err
    base = path.parent
    jobs, bad = [], []
    number = 0
    for line_no, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        number += 1
        label = f"job {number} (line {line_no} of {path.name})"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            bad.append((label, f"not a JSON object ({err.msg} at column {err.colno})"))
            continue
        if not isinstance(record, dict):
            bad.append((label, "not a JSON object"))
            continue
        unknown = sorted(set(record) - JOB_KEYS)
        if unknown:
            bad.append((label, f"unknown keys {unknown}; a job has {sorted(JOB_KEYS)}"))
            continue
        texts = {k: record.get(k) for k in ("image", "face_features", "prompt", "identity_prompt", "negative_prompt",
                                             "out")}
        wrong = [k for k, v in texts.items() if v is not None and not isinstance(v, str)]
        if wrong:
            bad.append((label, f"{', '.join(wrong)} must be text"))
            continue
        jobs.append(Job(
            label=label, prompt=texts["prompt"], out=_resolve(base, texts["out"]), image=_resolve(base, texts["image"]),
            face_features=_resolve(base, texts["face_features"]), identity_prompt=texts["identity_prompt"],
            seed=record.get("seed"), negative_prompt=texts["negative_prompt"],
        ))
    if not jobs and not bad:
        raise UserError(f"--batch {path} has no jobs (one JSON object per line)")
    return jobs, bad


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)
