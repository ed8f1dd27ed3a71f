"""The procedural identity world: numbered people, clips of them doing prompted things, and reference face crops.

Everything is a pure function of (world seed, identity number, clip index): rendering the same clip twice gives the
same pixels, on any machine. Defaults: 64 x 64 frames, 17 frames (4k+1, five CogVideoX latent frames), 8 fps.

    clip = make_clip(number=1000, clip_index=0)          # Identity + Scene + caption + identity prompt
    video = render_clip(clip)                            # frames (17, 64, 64, 3) uint8 + boxes + masks
    face = render_reference(clip.identity, variant=0)    # 64 x 64 face crop in another setting (the "cross-face")
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .captions import caption, identity_prompt
from .motions import Pose, pose_track
from .render import View, crop_box, face_box, place_head, render_frame
from .traits import DEFAULT_WORLD_SEED, Identity, Scene, sample_identity, sample_scene, scene_rng

FRAME_SIZE = 64
NUM_FRAMES = 17
FPS = 8
REFERENCE_SIZE = 64


@dataclass(frozen=True)
class ClipSpec:
    """What a clip shows and what its texts say (no pixels yet)."""

    identity: Identity
    scene: Scene
    caption: str
    identity_prompt: str
    clip_index: int
    world_seed: int

    @property
    def clip_id(self) -> str:
        return f"id{self.identity.number:06d}_c{self.clip_index:03d}"


@dataclass
class RenderedClip:
    frames: np.ndarray  # (F, H, W, 3) uint8
    face_boxes: np.ndarray  # (F, 4) x0, y0, x1, y1 in pixels
    person_masks: np.ndarray  # (F, H, W) bool
    face_masks: np.ndarray  # (F, H, W) bool
    poses: list[Pose]


def make_clip(number: int, clip_index: int, world_seed: int = DEFAULT_WORLD_SEED, motion: str | None = None,
              speed: str | None = None) -> ClipSpec:
    """Clip `clip_index` of identity `number`; `motion`/`speed` override the sampled ones (same rest of the scene)."""
    identity = sample_identity(number, world_seed)
    rng = scene_rng(world_seed, number, clip_index)
    scene = sample_scene(rng, motion=motion, speed=speed)
    text_rng = scene_rng(world_seed, number, clip_index, salt=3)
    return ClipSpec(identity, scene, caption(identity, scene, text_rng), identity_prompt(identity, text_rng),
                    clip_index, world_seed)


def _clip_rng(spec: ClipSpec, salt: int) -> np.random.Generator:
    return scene_rng(spec.world_seed, spec.identity.number, spec.clip_index, salt=salt)


def render_clip(spec: ClipSpec, size: int = FRAME_SIZE, num_frames: int = NUM_FRAMES) -> RenderedClip:
    """Render every frame of a clip (person, masks, face boxes in pixels)."""
    poses = pose_track(spec.scene.motion, spec.scene.speed, num_frames, _clip_rng(spec, 4))
    bg_values = _clip_rng(spec, 5).random(16)
    view = View(0.0, 0.0, float(size))
    frames, people, faces, boxes = [], [], [], []
    for pose in poses:
        rgb, person, face = render_frame(spec.identity, spec.scene, pose, bg_values, view, size)
        frames.append(rgb)
        people.append(person)
        faces.append(face)
        boxes.append([v * size for v in face_box(place_head(spec.identity, pose))])
    return RenderedClip(np.stack(frames), np.asarray(boxes, np.float32), np.stack(people), np.stack(faces), poses)


def reference_setting(identity: Identity, variant: int, world_seed: int = DEFAULT_WORLD_SEED) -> tuple[Scene, Pose, np.ndarray]:
    """The setting of reference photo `variant`: its own clothes, background and lighting, no hat, a near-frontal
    neutral pose (small random turn and tilt)."""
    rng = scene_rng(world_seed, identity.number, 10_000 + variant, salt=6)
    scene = sample_scene(rng, motion="still")
    scene = Scene(scene.garment, scene.clothes_colour, "none", "none", scene.background, scene.lighting, "still", "normal")
    pose = Pose(yaw=float(rng.uniform(-0.12, 0.12)), pitch=float(rng.uniform(-0.06, 0.06)),
                dx=float(rng.uniform(-0.03, 0.03)), scale=float(rng.uniform(0.95, 1.05)))
    return scene, pose, rng.random(16)


def render_reference(identity: Identity, variant: int = 0, size: int = REFERENCE_SIZE,
                     world_seed: int = DEFAULT_WORLD_SEED) -> Image.Image:
    """A sharp square face crop of `identity` (drawn directly at crop resolution, not upscaled from a frame)."""
    scene, pose, bg_values = reference_setting(identity, variant, world_seed)
    x0, y0, side = crop_box(place_head(identity, pose))
    rgb, _, _ = render_frame(identity, scene, pose, bg_values, View(x0, y0, size / side), size)
    return Image.fromarray(rgb)


def crop_face(frame: np.ndarray, box, size: int, jitter: np.ndarray | None = None) -> np.ndarray:
    """The reference-style square crop around a face box (pixels) of a frame, resized to `size`.

    The square has the same proportions as `render_reference`'s crop; `jitter` (3 numbers: dx, dy, log-scale, in
    face-box units) perturbs it, as a detector would. Outside the frame is edge-padded."""
    x0, y0, x1, y1 = [float(v) for v in box[:4]]
    hh = (y1 - y0) / 2.25  # face_box spans 1.2 + 1.05 half-heights
    cx, cy = (x0 + x1) / 2, y0 + 1.2 * hh
    side = 2.7 * hh
    if jitter is not None:
        cx, cy, side = cx + jitter[0] * side, cy + jitter[1] * side, side * float(np.exp(jitter[2]))
    side = float(np.clip(side, 2.0, 4.0 * max(frame.shape[:2])))  # a wild detector box must not blow up the padding
    left, top = cx - side / 2, cy - 0.08 * hh - side / 2
    h, w = frame.shape[:2]
    pad = int(np.ceil(max(0.0, -left, -top, left + side - w, top + side - h))) + 1
    padded = Image.fromarray(np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    crop = padded.resize((size, size), Image.Resampling.BILINEAR,
                         box=(left + pad, top + pad, left + side + pad, top + side + pad))
    return np.asarray(crop)
