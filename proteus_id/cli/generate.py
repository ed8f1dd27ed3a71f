"""`proteus-id generate`: photo + prompt -> video (one job, or a batch with the model loaded once).

Everything is checked before any weights load: the model folder, sizes, frames, steps, prompts, output paths, the
photo (readable, one face found) and that the face features fit the model. Bad input: one line on stderr, exit 2,
no output file. A batch reports its bad jobs, writes the others and exits 1 if any job failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..pipeline.options import IDENTITY_GUIDANCE_NEGATIVES

logger = logging.getLogger("proteus_id")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to generate")
    what.add_argument("--model", help="model folder in the released layout (default: the shipped model)")
    what.add_argument("--image", help="photo of the person (the largest face is used)")
    what.add_argument("--prompt", help="the video: scene, action, camera")
    what.add_argument("--identity-prompt", help="short appearance description (default: derived from --prompt, see docs)")
    what.add_argument("--negative-prompt", default="", help="what to steer away from (default: empty, as released)")
    what.add_argument("--out", help="output video file (.mp4, H.264)")
    what.add_argument("--face-features", help="precomputed face features (.safetensors) instead of running a face backend")
    what.add_argument("--save-features", metavar="FILE.safetensors",
                      help="also save the photo's face features, for --face-features next time")
    what.add_argument("--batch", metavar="JOBS.jsonl",
                      help="one job per line: image, prompt, identity_prompt, negative_prompt, seed, out")
    what.add_argument("--skip-existing", action="store_true", help="skip jobs whose output file already exists (resume)")
    how = parser.add_argument_group("how")
    how.add_argument("--frames", type=int, help="number of frames, 4k+1 (default: the model's, 49 as released)")
    how.add_argument("--height", type=int, help="multiple of 16 (default: the model's, 480 as released)")
    how.add_argument("--width", type=int, help="multiple of 16 (default: the model's, 720 as released)")
    how.add_argument("--steps", type=int, help="denoising steps (default: the model's recommendation, else 50 as released)")
    how.add_argument("--guidance", type=float,
                     help="text guidance scale (default: the model's recommendation, else 6.0 as released)")
    how.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                     help="guide only the steps with LO <= timestep <= HI, the rest cost half (default: the model's "
                          "recommendation, else every step as released; 0 1000 guides every step)")
    how.add_argument("--motion-contrast", choices=["off", "still", "opposite"],
                     help="with no negative prompt given, guide away from the same prompt with its motion held still "
                          "or mirrored (the toy model's vocabulary; default: the model's recommendation, else off)")
    how.add_argument("--identity-guidance", type=float,
                     help="identity guidance scale: also push away from the prediction without the face latent "
                          "(0 = off, as released; default: the model's recommendation)")
    how.add_argument("--identity-guidance-negative", choices=IDENTITY_GUIDANCE_NEGATIVES,
                     help="what identity guidance's negative prediction lacks: face_latent (zero face latent, as "
                          "training's image dropout; default), identity_prompt (empty identity prompt, as its dropout), "
                          "both, or branch (the whole face branch off, never seen in training)")
    how.add_argument("--seed", type=int, help="random seed (0 is a seed; default: a random one, printed)")
    how.add_argument("--fps", type=int, help="frame rate of the file (default: the model's, else 8)")
    how.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    how.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                     help="weights dtype (auto: bf16 on GPU, fp32 on CPU)")
    how.add_argument("--offload", default="none", choices=["none", "model", "sequential"],
                     help="CPU offload: model (one component on the GPU at a time), sequential (least memory, slowest)")
    how.add_argument("--vae-tiling", action="store_true", help="decode the video in tiles (less memory)")
    how.add_argument("--face-backend", help="face backend kind (default: the one the model was trained with)")
    how.add_argument("--use-ema", action="store_true", help="use transformer_ema/ weights")


def run(args: argparse.Namespace) -> int:
    from ..defaults import default_model_dir
    from ..errors import UserError
    from ..identity.analyzer import default_device
    from ..identity.features import IdentitySpec
    from ..pipeline.folder import inspect_model_folder
    from . import generate_jobs as jobs_mod

    device = _check_device(args.device) if args.device else default_device()
    model_dir = args.model or default_model_dir()
    if model_dir is None:
        raise UserError("no --model given and this build ships no default model: pass --model DIR "
                        "(a model folder in the released layout)")
    folder = inspect_model_folder(model_dir)
    folder.require_complete()
    geometry = jobs_mod.read_geometry(folder)
    spec = IdentitySpec.for_model(folder.root)
    height = args.height or geometry.default_height
    width = args.width or geometry.default_width
    frames = args.frames or geometry.default_frames
    for name, value in (("--height", args.height), ("--width", args.width), ("--frames", args.frames)):
        if value is not None and value <= 0:
            raise UserError(f"{name} must be positive, got {value}")
    jobs_mod.check_video_size(height, width, frames, geometry)
    jobs_mod.fill_generation_defaults(args, folder)
    jobs_mod.check_numbers(args.steps, args.guidance, args.fps)
    args.guidance_interval = jobs_mod.check_guidance_interval(args.guidance_interval)
    jobs_mod.check_seed(args.seed)

    if args.batch:
        given = [f for f in ("image", "prompt", "identity_prompt", "out", "face_features", "save_features")
                 if getattr(args, f)]
        if given:
            raise UserError(f"--batch takes its jobs from the file; drop {', '.join('--' + g.replace('_', '-') for g in given)}")
        jobs, bad = jobs_mod.read_jobs(args.batch)
        for job in jobs:  # --seed is the seed of jobs that name none
            job.seed = args.seed if job.seed is None else job.seed
    else:
        if not args.image and not args.face_features:
            raise UserError("--image is missing: give a photo of the person (or --face-features, or --batch)")
        if args.save_features and not args.image:
            raise UserError("--save-features saves what the face backend computes from --image; give --image")
        if args.save_features:
            jobs_mod.check_output(args.save_features, "--save-features", ".safetensors")
        jobs = [jobs_mod.Job(label=args.image or args.face_features, prompt=args.prompt, out=args.out, image=args.image,
                             face_features=args.face_features, identity_prompt=args.identity_prompt, seed=args.seed)]
        bad = []

    # every job is checked (photo analysed, face found, sizes fit) before the pipeline loads; a big batch keeps only
    # the verdict and analyses each photo again just before its video, instead of holding all features in memory
    keep_features = len(jobs) <= KEEP_FEATURES
    preparer = _JobPreparer(folder.root, spec, device, args.face_backend)
    ready, skipped = [], 0
    for job in jobs:
        try:
            prepared = preparer.prepare(job, keep_features)
        except UserError as err:
            if not args.batch:
                raise
            bad.append((job.label, " ".join(str(err).split())))
            continue
        if args.skip_existing and prepared.out.exists():
            skipped += 1
            logger.info("%s: %s exists, skipped", job.label, prepared.out)
            continue
        ready.append(prepared)
    for label, reason in bad:
        print(f"error: {label}: {reason}", file=sys.stderr)

    if args.save_features and ready:
        Path(args.save_features).parent.mkdir(parents=True, exist_ok=True)
        ready[0].features.save(args.save_features)
        print(f"saved face features to {args.save_features}")
    if keep_features:
        preparer.close()  # every feature is in hand: free the face models before the video model loads
    written = 0
    if ready:
        pipe = _load_pipeline(folder.root, device, args)
        for number, prepared in enumerate(ready, 1):
            if len(ready) > 1:
                logger.info("video %d of %d: %s", number, len(ready), prepared.label)
            try:
                features = prepared.features or preparer.features(prepared.job)
                _generate_one(pipe, prepared, features, height, width, frames, args)
                written += 1
            except (UserError, ValueError) as err:
                if not args.batch:
                    raise UserError(str(err)) from err
                bad.append((prepared.label, str(err)))
                print(f"error: {prepared.label}: {' '.join(str(err).split())}", file=sys.stderr)
    if args.batch:
        print(f"batch: {written} written, {len(bad)} failed, {skipped} skipped (output already there)")
    return 1 if bad else 0


KEEP_FEATURES = 8  # released features are ~12 MB a job (5 x 577 x 1024 floats)


class _Prepared:
    def __init__(self, job, prompt, identity_prompt, seed, out, features):
        self.job, self.label, self.prompt, self.identity_prompt = job, job.label, prompt, identity_prompt
        self.seed, self.out, self.features = seed, out, features


class _JobPreparer:
    """Turns a job into checked inputs; the face backend is created on the first photo that needs it."""

    def __init__(self, model_dir, spec, device: str, backend_kind: str | None):
        self.model_dir, self.spec, self.device, self.backend_kind = model_dir, spec, device, backend_kind
        self._analyzer = None
        self._outputs: set = set()

    def prepare(self, job, keep_features: bool = True) -> _Prepared:
        from ..identity.identity_prompt import derive_identity_prompt
        from ..errors import UserError
        from . import generate_jobs as jobs_mod

        prompt = jobs_mod.check_prompt(job.prompt, "prompt" if job.label.startswith("job") else "--prompt")
        if job.identity_prompt is not None:
            identity_prompt = jobs_mod.check_prompt(job.identity_prompt, "identity prompt")
        else:
            identity_prompt = derive_identity_prompt(prompt)
        seed = jobs_mod.check_seed(job.seed)
        out = jobs_mod.check_output(job.out, "out" if job.label.startswith("job") else "--out")
        key = out.resolve()
        if key in self._outputs:
            raise UserError(f"out {out} is also the output of an earlier job; give each job its own file")
        self._outputs.add(key)
        features = self.features(job)
        return _Prepared(job, prompt, identity_prompt, seed, out, features if keep_features else None)

    def features(self, job):
        from ..identity.features import IdentityFeatures
        from ..identity.image_io import load_image
        from ..errors import UserError
        from PIL import Image

        if job.face_features:
            features = IdentityFeatures.load(job.face_features)
            features.id_cond = features.id_cond.reshape(1, 1, features.id_cond.shape[-1])
            self.spec.check(features, source=f"face features in {job.face_features}")
            if features.kind not in ("unknown", self.spec.kind):
                logger.warning("%s were made by the '%s' face backend; this model was trained with '%s' features",
                               job.face_features, features.kind, self.spec.kind)
            if features.face_crop is None:
                if not job.image:
                    raise UserError(f"{job.face_features} holds no face crop: also give the aligned face photo with --image")
                features.face_crop = Image.fromarray(load_image(job.image))
            elif job.image:
                logger.warning("%s has its own face crop; --image %s is not used", job.face_features, job.image)
            return features
        if not job.image:
            raise UserError("image is missing: give a photo of the person (or face_features)")
        photo = load_image(job.image)  # a missing or unreadable photo is named before any face model loads
        features = self.analyzer.analyze(photo, name=job.image)
        if features.face_crop is None:
            raise UserError(f"the '{self.analyzer.kind}' face backend gave no face crop for {job.image}; the pipeline needs one")
        return features

    def close(self) -> None:
        if self._analyzer is not None:
            self._analyzer = None
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    @property
    def analyzer(self):
        if self._analyzer is None:
            from ..identity.analyzer import FaceAnalyzer

            self._analyzer = FaceAnalyzer.for_model(self.model_dir, backend=self.backend_kind, device=self.device)
        return self._analyzer


def _check_device(name: str) -> str:
    import torch

    from ..errors import UserError

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise UserError(f"--device {name!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: torch sees no CUDA GPU here; leave --device out to use the CPU")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return name


def _load_pipeline(model_dir, device: str, args: argparse.Namespace):
    import torch

    from ..pipeline.pipeline import ProteusIDPipeline

    on_gpu = not str(device).startswith("cpu")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(
        args.dtype, torch.bfloat16 if on_gpu else torch.float32
    )
    logger.info("loading %s (%s) on %s", model_dir, str(dtype).replace("torch.", ""), device)
    pipe = ProteusIDPipeline.from_pretrained(model_dir, torch_dtype=dtype, use_ema=args.use_ema)
    if args.offload != "none" and not on_gpu:
        logger.warning("--offload %s has no effect on the CPU; ignored", args.offload)
    elif args.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif args.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if args.vae_tiling:
        pipe.vae.enable_tiling()
    return pipe


def _generate_one(pipe, job: _Prepared, f, height: int, width: int, frames: int, args: argparse.Namespace):
    """Generate one job's video, write it, and return its frames (float (F, H, W, 3) in [0, 1])."""
    from ..pipeline.video import write_video
    from . import generate_jobs as jobs_mod

    seed = job.seed if job.seed is not None else jobs_mod.random_seed()
    if job.seed is None:
        logger.info("%s: no seed given, using seed %d", job.label, seed)
    logger.info("%s: identity prompt: %s", job.label, job.identity_prompt)
    given = job.job.negative_prompt if job.job.negative_prompt is not None else args.negative_prompt
    negative = jobs_mod.negative_prompt_for(job.prompt, given, args.motion_contrast)
    if negative:
        logger.info("%s: negative prompt: %s", job.label, negative)
    result = pipe(
        image=f.face_crop, prompt=job.prompt, identity_prompt=job.identity_prompt, negative_prompt=negative,
        id_cond=f.id_cond, id_vit_hidden=f.id_vit_hidden, kps_cond=f.keypoints, seed=seed, num_frames=frames,
        height=height, width=width, num_inference_steps=args.steps, guidance_scale=args.guidance, output_type="np",
        guidance_interval=args.guidance_interval, identity_guidance_scale=args.identity_guidance,
        identity_guidance_negative=args.identity_guidance_negative,
    )
    if job.out.exists():
        logger.info("%s exists and is replaced", job.out)
    path = write_video(result.frames[0], job.out, fps=args.fps)
    print(f"wrote {path} (seed {seed}, {frames} frames {height}x{width})")
    return result.frames[0]
