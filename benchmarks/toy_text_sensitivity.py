"""How much does a toy model's prediction respond to each kind of prompt edit? A diagnostic for prompts that are
ignored: for one base prompt per identity, change only its motion, or only its clothes colour, place or light,
and print |v(edited) - v(base)| / |v(base)| of the transformer's prediction at a few noise levels (same noisy
latent, same face), beside how much the edit changes the text encoder's output.

    python benchmarks/toy_text_sensitivity.py ROOT/trained/full_s2000 [ROOT/trained/full_s4000 ...] [--identities 6]
    python benchmarks/toy_text_sensitivity.py ROOT/trained/full_s4000 --walk-probe --identities 8
    python benchmarks/toy_text_sensitivity.py ROOT/trained/face1 --motion-probe "turn left" --timesteps 999,800,600,400
    python benchmarks/toy_text_sensitivity.py ROOT/trained/full_s2000 ROOT/trained/full_pos_s2000 --frame-probe --identities 3

A model that follows a kind of edit changes its prediction for it; one that has not learned it gives ~0.
--walk-probe: a true walk-left clip of each identity, noised to each timestep, and the one-step x0 prediction
with its own caption and with the caption turned to walk right; prints the face's horizontal drift (last minus
first frame, the world's locator) of both predictions.
--motion-probe MOTION: the same with a true MOTION clip (fast) and the captions MOTION and "still"; prints the world's
motion judge's probability of MOTION on each decoded prediction (for motions inside the face: turns, nods, smiles),
and on the clip's VAE round trip (the ceiling of any prediction).
--frame-probe: can the model tell its latent frames apart? The same noise in all five latent frames (the walk-left
base prompt): how much the x0 prediction of frames 2, 3, 4 differs from frame 1's, and how much the prediction
changes when the temporal part of the rotary tables is removed (every frame at time 0).
All probes use `judge_val` identities (not the benchmark's).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools

import numpy as np

BASE = "A {gender} wearing a red t-shirt walks from right to left in a green park, in bright daylight."
EDITS = {  # kind of edit -> (what is replaced, by what)
    "motion: walk right": ("walks from right to left", "walks from left to right"),
    "motion: move closer": ("walks from right to left", "moves closer to the camera"),
    "motion: nod": ("walks from right to left", "nods"),
    "motion: stand still": ("walks from right to left", "stands still"),
    "clothes colour": ("a red t-shirt", "a blue t-shirt"),
    "place": ("in a green park", "at the beach"),
    "light": ("in bright daylight", "in dim light"),
}
IDENTITY_PROMPT_LENGTH = 32  # the pipeline's max_identity_length default


class Probe:
    """One model's transformer with a fixed face: text encoding and one prediction at a time, as the pipeline
    builds its inputs (image-condition latent, fused identity tokens, rotary embeddings)."""

    def __init__(self, model: str):
        import torch

        from proteus_id.identity.backends import backend_for_model
        from proteus_id.pipeline.pipeline import ProteusIDPipeline

        self.pipe = ProteusIDPipeline.from_pretrained(model)
        self.backend = backend_for_model(model)
        self.net = self.pipe.transformer
        cfg = self.net.config
        self.size = cfg.sample_height * self.pipe.vae_scale_factor_spatial
        self.latent_frames = (cfg.sample_frames - 1) // self.pipe.vae_scale_factor_temporal + 1
        self.torch = torch

    def encode(self, text: str):
        length = self.net.config.max_text_seq_length
        return self.pipe.encode_prompts([text], length, "cpu", room=length - self.net.config.FT_num_querie)

    def set_face(self, reference, identity_prompt: str, seed: int) -> None:
        torch = self.torch
        self.features = self.backend.extract(reference)
        pixels = self.pipe.video_processor.preprocess(self.features.face_crop, height=self.size, width=self.size)
        self.image = self.pipe.prepare_image_latents(pixels, self.latent_frames, torch.float32,
                                                     torch.Generator().manual_seed(seed))
        identity, _ = self.pipe.encode_prompts([identity_prompt], IDENTITY_PROMPT_LENGTH, "cpu")
        self.fused = self.net.encode_identity(identity, self.features.id_cond, self.features.id_vit_hidden)
        self.rotary = self.pipe.rotary_embeddings(self.size, self.size, self.latent_frames, "cpu")

    def set_identity(self, number: int, k: int):
        """The k-th probed identity: its reference face (identity prompt "a man" / "a woman") and a noisy latent."""
        from proteus_id.toyworld.traits import sample_identity
        from proteus_id.toyworld.world import render_reference

        identity = sample_identity(number)
        self.set_face(render_reference(identity, variant=0), f"a {identity.gender}", seed=k)
        noisy = self.torch.randn(self.image.shape, generator=self.torch.Generator().manual_seed(100 + k))
        return identity, noisy

    def predict(self, noisy, text_encoding, t: int):
        embeds, mask = text_encoding
        f = self.features
        return self.net(hidden_states=self.torch.cat([noisy, self.image], 2), encoder_hidden_states=embeds,
                        encoder_hidden_mask=mask, timestep=self.torch.tensor([t]), image_rotary_emb=self.rotary,
                        id_cond=f.id_cond, id_vit_hidden=f.id_vit_hidden, is_infer=True, return_dict=False,
                        fused_tokens=self.fused)[0]


def relative_change(a, b) -> float:
    n = min(a.shape[1], b.shape[1])  # text encodings may differ in length
    return float((a[:, :n] - b[:, :n]).norm() / b[:, :n].norm())


def edit_sensitivity(probe: Probe, model: str, numbers: list[int], timesteps: list[int]) -> None:
    changes: dict[str, list[list[float]]] = {name: [] for name in EDITS}
    text_changes: dict[str, list[float]] = {name: [] for name in EDITS}
    for k, number in enumerate(numbers):
        identity, noisy = probe.set_identity(number, k)
        base_text = probe.encode(BASE.format(gender=identity.gender))
        base_v = {t: probe.predict(noisy, base_text, t) for t in timesteps}
        for name, (old, new) in EDITS.items():
            edited = probe.encode(BASE.format(gender=identity.gender).replace(old, new))
            changes[name].append([relative_change(probe.predict(noisy, edited, t), base_v[t]) for t in timesteps])
            text_changes[name].append(relative_change(edited[0], base_text[0]))
    for name in EDITS:
        per_t = np.mean(changes[name], axis=0)
        print(f"{model[-28:]:28s} {name:20s} " + " ".join(f"{x:7.3f}" for x in per_t)
              + f"   {np.mean(text_changes[name]):.3f}")


def vae_round_trip(probe: Probe, frames: np.ndarray) -> np.ndarray:
    """The clip encoded (latent mean) and decoded by the model's VAE: the best any transformer could return."""
    torch, vae = probe.torch, probe.pipe.vae
    pixels = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    decoded = vae.decode(vae.encode(pixels).latent_dist.mean).sample[0].permute(1, 2, 3, 0)
    return ((decoded.clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def one_step_predictions(probe: Probe, frames: np.ndarray, captions: dict[str, str], timesteps: list[int], k: int):
    """The true clip `frames` noised to each timestep (noise seed k), and the one-step x0 prediction under each
    caption, decoded: yields (t, caption key, uint8 frames)."""
    from proteus_id.training.loss import x0_prediction

    torch, pipe = probe.torch, probe.pipe
    scale = pipe.vae_scaling_factor_image
    pixels = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    x0 = pipe.vae.encode(pixels).latent_dist.mean.permute(0, 2, 1, 3, 4) * scale
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(k))
    encodings = {key: probe.encode(text) for key, text in captions.items()}
    for t in timesteps:
        at_t = torch.tensor([t])
        noisy = pipe.scheduler.add_noise(x0, noise, at_t)
        for key, encoding in encodings.items():
            x0_hat = x0_prediction(pipe.scheduler, probe.predict(noisy, encoding, t), noisy, at_t)
            decoded = pipe.vae.decode(x0_hat.permute(0, 2, 1, 3, 4) / scale).sample[0].permute(1, 2, 3, 0)
            yield t, key, ((decoded.clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def probe_clips(probe: Probe, numbers: list[int], motion: str, other: str, speed: str = "normal"):
    """Per identity: (k, true clip of `motion`, {motion: its caption, other: the same caption with `other`}), with
    the probe's face set to the identity's reference and identity prompt."""
    from proteus_id.toyworld.captions import caption, identity_prompt
    from proteus_id.toyworld.traits import DEFAULT_WORLD_SEED, sample_identity, sample_scene
    from proteus_id.toyworld.world import ClipSpec, render_clip, render_reference

    for k, number in enumerate(numbers):
        identity = sample_identity(number)
        scene = sample_scene(np.random.default_rng([number, 7]), motion=motion, speed=speed)
        captions = {m: caption(identity, dataclasses.replace(scene, motion=m), np.random.default_rng([number, 8]))
                    for m in (motion, other)}
        frames = render_clip(ClipSpec(identity, scene, captions[motion], "", k, DEFAULT_WORLD_SEED)).frames
        probe.set_face(render_reference(identity, variant=0),
                       identity_prompt(identity, np.random.default_rng([number, 9])), seed=0)
        yield k, frames, captions


def walk_probe(probe: Probe, model: str, numbers: list[int], timesteps: list[int]) -> None:
    from proteus_id.toyworld.judge_eval import JudgeSet
    from proteus_id.toyworld.ship import JUDGES_DIR

    judges = JudgeSet.load(JUDGES_DIR)

    def drift(frames: np.ndarray) -> float:
        boxes = np.asarray(judges.locate(frames), dtype=np.float64)
        centre = (boxes[:, 0] + boxes[:, 2]) / 2
        return float(centre[-1] - centre[0])

    drifts: dict[str, list[float]] = {}
    for k, frames, captions in probe_clips(probe, numbers, "walk left", "walk right"):
        drifts.setdefault("true clip", []).append(drift(frames))
        for t, key, decoded in one_step_predictions(probe, frames, captions, timesteps, k):
            drifts.setdefault(f"t={t}, caption {key}", []).append(drift(decoded))
    for key, values in drifts.items():
        print(f"{model[-28:]:28s} {key:28s} face drift {np.mean(values):+7.2f} px  "
              f"({', '.join(f'{v:+.1f}' for v in values)})")


def motion_probe(probe: Probe, model: str, numbers: list[int], timesteps: list[int], motion: str) -> None:
    """The motion judge's probability of `motion` on the one-step x0 of a noised true `motion` clip, with its own
    caption and with the caption turned to "still": where the two part, the model takes that motion from the text."""
    from proteus_id.toyworld.judge_eval import JudgeSet
    from proteus_id.toyworld.ship import JUDGES_DIR

    judges = JudgeSet.load(JUDGES_DIR)
    probs: dict[str, list[float]] = {}
    for k, frames, captions in probe_clips(probe, numbers, motion, "still", speed="fast"):
        probs.setdefault("true clip", []).append(judges.motion(frames)["motion_probs"][motion])
        probs.setdefault("VAE round trip", []).append(judges.motion(vae_round_trip(probe, frames))["motion_probs"][motion])
        for t, key, decoded in one_step_predictions(probe, frames, captions, timesteps, k):
            probs.setdefault(f"t={t}, caption {key}", []).append(judges.motion(decoded)["motion_probs"][motion])
    for key, values in probs.items():
        print(f"{model[-28:]:28s} {key:28s} p({motion}) {np.mean(values):.2f}  ({', '.join(f'{v:.2f}' for v in values)})")


def frame_probe(probe: Probe, model: str, numbers: list[int], timesteps: list[int]) -> None:
    from proteus_id.training.loss import x0_prediction

    torch = probe.torch
    temporal = probe.net.config.attention_head_dim // 4  # get_3d_rotary_pos_embed gives time the first quarter
    spread: dict[int, list[list[float]]] = {t: [] for t in timesteps}
    no_time: dict[int, list[float]] = {t: [] for t in timesteps}
    for k, number in enumerate(numbers):
        identity, noisy = probe.set_identity(number, k)
        cos, sin = probe.rotary
        frozen = (cos.clone(), sin.clone())
        frozen[0][:, :temporal], frozen[1][:, :temporal] = 1.0, 0.0
        same = noisy[:, :1].expand_as(noisy).clone()
        text = probe.encode(BASE.format(gender=identity.gender))
        for t in timesteps:
            v = probe.predict(noisy, text, t)
            probe.rotary = frozen
            no_time[t].append(relative_change(probe.predict(noisy, text, t), v))
            probe.rotary = (cos, sin)
            x0 = x0_prediction(probe.pipe.scheduler, probe.predict(same, text, t), same, torch.tensor([t]))
            spread[t].append([float((x0[:, i] - x0[:, 1]).norm() / x0[:, 1].norm()) for i in range(2, x0.shape[1])])
    for t in timesteps:
        per_frame = np.mean(spread[t], axis=0)
        print(f"{model[-28:]:28s} t={t:<4d} same noise: frames 2.. vs 1 differ by "
              + " ".join(f"{x:.3f}" for x in per_frame) + f"; without temporal rotary: change {np.mean(no_time[t]):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--identities", type=int, default=6)
    parser.add_argument("--timesteps", help="noise levels (default 999,700; with --walk-probe 999,900,700,500)")
    probes = parser.add_mutually_exclusive_group()
    probes.add_argument("--walk-probe", action="store_true", help="one-step x0 of a noised true walk clip instead")
    probes.add_argument("--frame-probe", action="store_true", help="does the prediction tell the latent frames apart?")
    probes.add_argument("--motion-probe", metavar="MOTION",
                        help="the motion judge on one-step x0 of a noised true MOTION clip (e.g. 'turn left', 'nod'), "
                             "with its caption and with 'still'")
    args = parser.parse_args()

    import torch

    from proteus_id.toyworld.traits import identity_numbers

    torch.set_num_threads(1)
    if args.motion_probe is not None:
        from proteus_id.toyworld.traits import MOTIONS

        if args.motion_probe not in MOTIONS:
            parser.error(f"--motion-probe must be one of {', '.join(MOTIONS)}")
    one_step = args.walk_probe or args.motion_probe
    timesteps = [int(t) for t in (args.timesteps or ("999,900,700,500" if one_step else "999,700")).split(",")]
    numbers = identity_numbers("judge_val", args.identities)
    if not (one_step or args.frame_probe):
        print(f"{'model':28s} {'edit':20s} " + " ".join(f"{'t=' + str(t):>7s}" for t in timesteps) + "   text change")
    if args.motion_probe:
        run = functools.partial(motion_probe, motion=args.motion_probe)
    else:
        run = walk_probe if args.walk_probe else frame_probe if args.frame_probe else edit_sensitivity
    for model in args.models:
        probe = Probe(model)
        with torch.no_grad():
            run(probe, model, numbers, timesteps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
