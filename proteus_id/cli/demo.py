"""`proteus-id demo`: one video of a shipped example identity with the shipped model, plus a preview image.

    proteus-id demo --out demo.mp4                         the first example face and its prompt
    proteus-id demo --face eval042 --prompt "..." --out x.mp4
    proteus-id demo --list                                 the example faces and their prompts

The shipped model is a small Proteus-ID trained by us on a procedural world of cartoon people (docs/toyworld.md):
its example faces are evaluation identities it never saw in training. The preview (OUT with .png) shows the
reference beside frames of the video; both are enlarged (--display-scale) because the model works at 64 x 64.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

logger = logging.getLogger("proteus_id")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo.mp4", help="video file to write (default demo.mp4); the preview is OUT.png")
    parser.add_argument("--face", help="example face by name (see --list; default: the first)")
    parser.add_argument("--prompt", help="what the person does (default: the example face's own prompt)")
    parser.add_argument("--identity-prompt", help="appearance text (default: the example face's own)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42, as released; 0 is a seed)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the shipped model's recommendation)")
    parser.add_argument("--guidance", type=float, help="text guidance scale (default: the model's recommendation)")
    parser.add_argument("--identity-guidance", type=float,
                        help="identity guidance scale, 0 = off (default: the model's recommendation)")
    parser.add_argument("--display-scale", type=int, default=4,
                        help="enlarge the video and preview this many times for viewing (default 4; 1 = native size)")
    parser.add_argument("--preview-frames", type=int, default=6, help="frames shown beside the reference (default 6)")
    parser.add_argument("--list", action="store_true", help="list the example faces and exit")


def example_faces() -> list[dict]:
    from ..toyworld.ship import FACES_DIR

    index = FACES_DIR / "faces.json"
    if not index.is_file():
        return []
    faces = json.loads(index.read_text())["faces"]
    for face in faces:
        face["path"] = FACES_DIR / face["image"]
    return faces


def run(args: argparse.Namespace) -> int:
    from ..defaults import default_model_dir
    from ..errors import UserError
    from . import generate_jobs as jobs_mod

    faces = example_faces()
    if args.list:
        for face in faces:
            print(f"{face['name']}: {face['identity_prompt']}\n    prompt: {face['prompt']}")
        return 0
    model_dir = default_model_dir()
    if model_dir is None or not faces:
        raise UserError("this build ships no default model or example faces; use `proteus-id generate --model DIR` "
                        "with a model folder of your own")
    if args.face is None:
        face = faces[0]
    else:
        matches = [f for f in faces if f["name"] == args.face]
        if not matches:
            raise UserError(f"--face {args.face!r} is not a shipped example; choose one of "
                            f"{', '.join(f['name'] for f in faces)}")
        face = matches[0]
    if args.display_scale < 1 or args.preview_frames < 1:
        raise UserError("--display-scale and --preview-frames must be at least 1")
    out = jobs_mod.check_output(args.out, "--out")
    prompt = jobs_mod.check_prompt(args.prompt if args.prompt is not None else face["prompt"])
    identity_prompt = jobs_mod.check_prompt(args.identity_prompt or face["identity_prompt"], "--identity-prompt")
    started = time.perf_counter()
    video, reference, settings = generate_example(model_dir, face["path"], prompt, identity_prompt, args.seed,
                                                  steps=args.steps, guidance=args.guidance,
                                                  identity_guidance=args.identity_guidance)
    write_outputs(video, reference, out, settings["fps"], args.display_scale, args.preview_frames,
                  title=f"{face['name']}: {prompt}")
    print(f"wrote {out} and {out.with_suffix('.png')} ({face['name']}, seed {args.seed}, {settings['steps']} steps, "
          f"guidance {settings['guidance']:g}{_interval_text(settings['guidance_interval'])}"
          f"{_identity_guidance_text(settings)}; "
          f"{time.perf_counter() - started:.1f} s)")
    print(f"prompt: {prompt}\nidentity prompt: {identity_prompt}")
    if settings["negative_prompt"] and settings["guidance"] > 1:
        print(f"negative prompt ({settings['motion_contrast']} motion contrast): {settings['negative_prompt']}")
    return 0


def _interval_text(interval: list[float] | None) -> str:
    return "" if interval is None else f" at timesteps {interval[0]:g}-{interval[1]:g}"


def _identity_guidance_text(settings: dict) -> str:
    scale = settings["identity_guidance"]
    return f", identity guidance {scale:g} against {settings['identity_guidance_negative']}" if scale > 0 else ""


def generate_example(model_dir: Path, image: Path, prompt: str, identity_prompt: str, seed: int,
                     steps: int | None = None, guidance: float | None = None, identity_guidance: float | None = None):
    """Frames (F, H, W, 3) in [0, 1], the reference crop (uint8) and the settings used."""
    import numpy as np

    from ..identity.backends import backend_for_model
    from ..pipeline.folder import inspect_model_folder
    from ..pipeline.pipeline import ProteusIDPipeline

    folder = inspect_model_folder(model_dir)
    settings = argparse.Namespace(steps=steps, guidance=guidance, fps=None, guidance_interval=None, motion_contrast=None,
                                  identity_guidance=identity_guidance, identity_guidance_negative=None)
    from .generate_jobs import check_guidance_interval, check_numbers, fill_generation_defaults, negative_prompt_for

    fill_generation_defaults(settings, folder)
    check_numbers(settings.steps, settings.guidance, settings.fps)
    settings.guidance_interval = check_guidance_interval(settings.guidance_interval)
    settings.negative_prompt = negative_prompt_for(prompt, "", settings.motion_contrast)
    features = backend_for_model(model_dir).extract(image)
    pipe = ProteusIDPipeline.from_pretrained(model_dir)
    result = pipe(image=features.face_crop, prompt=prompt, negative_prompt=settings.negative_prompt,
                  identity_prompt=identity_prompt, id_cond=features.id_cond,
                  id_vit_hidden=features.id_vit_hidden, seed=seed, num_inference_steps=settings.steps,
                  guidance_scale=settings.guidance, guidance_interval=settings.guidance_interval,
                  identity_guidance_scale=settings.identity_guidance,
                  identity_guidance_negative=settings.identity_guidance_negative, output_type="np")
    return result.frames[0], np.asarray(features.face_crop.convert("RGB")), vars(settings)


def write_outputs(video, reference, out: Path, fps: int, scale: int, preview_frames: int, title: str = "") -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    from ..pipeline.video import to_uint8_frames, write_video

    frames = to_uint8_frames(video)
    if scale > 1:
        size = (frames.shape[2] * scale, frames.shape[1] * scale)
        frames = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS)) for f in frames])
    write_video(frames, out, fps=fps)
    height = frames.shape[1]
    picks = np.linspace(0, len(frames) - 1, min(preview_frames, len(frames))).round().astype(int)
    tiles = [Image.fromarray(reference).resize((height, height), Image.Resampling.LANCZOS)]
    tiles += [Image.fromarray(frames[k]) for k in picks]
    gap, top = 6, 20
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), height + 2 * top), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title[:200], fill=(20, 20, 20))
    x = 0
    for k, tile in enumerate(tiles):
        sheet.paste(tile, (x, top))
        label = "reference" if k == 0 else f"frame {picks[k - 1]}"
        draw.text((x + 4, top + height + 4), label, fill=(20, 20, 20))
        x += tile.width + gap
    from ..atomic import atomic_path

    with atomic_path(out.with_suffix(".png")) as tmp:
        sheet.save(tmp, format="PNG")
