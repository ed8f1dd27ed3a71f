"""The people and scenes of the procedural identity world, as plain data sampled deterministically from a seed.

An `Identity` holds what stays with a person in every clip (the traits an identity model must keep); a `Scene`
holds what the prompt controls (clothes, hat, background, lighting, motion and its speed). Vocabularies live
here so the renderer, the captions and the judges agree on one list of classes per trait.

Identities are numbered; a number belongs to exactly one split (`SPLITS`), so the 150 evaluation identities are
never seen by any trained part (transformer, identity encoder, judges each have their own range).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_WORLD_SEED = 20250630

# Disjoint identity-number ranges, one per use: [start, stop).
SPLITS: dict[str, tuple[int, int]] = {
    "eval": (0, 150),  # the paper's evaluation size; used by nothing that is trained
    "train": (1_000, 100_000),  # the transformer's training clips
    "encoder": (100_000, 200_000),  # the conditioning identity encoder
    "judge": (200_000, 300_000),  # the judges (trained independently of the encoder)
    "judge_val": (300_000, 310_000),  # held-out identities to measure the judges / encoder
}

# ---------------------------------------------------------------- identity vocabularies (name -> RGB)
FACE_SHAPES = ("oval", "round", "square", "long")
FACE_ASPECT = {"oval": 0.80, "round": 0.95, "square": 0.88, "long": 0.70}  # width / height
SKIN_TONES = {
    "very fair": (250, 224, 208), "fair": (238, 200, 172), "light": (226, 182, 146), "medium": (200, 150, 110),
    "olive": (184, 144, 100), "tan": (166, 118, 80), "brown": (128, 84, 56), "dark": (88, 56, 38),
}
EYE_COLOURS = {"brown": (110, 60, 25), "blue": (60, 130, 230), "green": (50, 160, 70), "grey": (150, 160, 170),
               "amber": (210, 150, 30)}
HAIR_STYLES_BY_GENDER = {
    "man": ("short", "buzz", "curly", "bald", "long"),
    "woman": ("long", "ponytail", "bob", "curly", "short"),
}
HAIR_STYLES = ("short", "buzz", "curly", "bald", "long", "ponytail", "bob")
HAIR_COLOURS = {"black": (25, 22, 22), "brown": (100, 60, 30), "blonde": (230, 200, 110), "red": (190, 70, 30),
                "grey": (165, 165, 165), "white": (240, 240, 235)}
BROWS = ("thin", "thick", "arched")
GLASSES = ("none", "round", "square")
BEARDS = ("none", "stubble", "full", "moustache", "goatee")
MARKS = ("none", "freckles", "moles")
EYE_SPACINGS = ("close-set", "average", "wide-set")
EYE_SPACING_VALUE = {"close-set": 0.30, "average": 0.37, "wide-set": 0.44}  # half-distance, in face half-widths

# ---------------------------------------------------------------- scene vocabularies (prompt-controlled)
GARMENTS = ("t-shirt", "shirt", "sweater", "hoodie", "jacket")
CLOTHES_COLOURS = {"red": (200, 40, 40), "blue": (40, 80, 200), "green": (40, 150, 60), "yellow": (235, 205, 40),
                   "white": (235, 235, 235), "black": (30, 30, 35), "orange": (240, 130, 30), "purple": (130, 50, 170),
                   "pink": (240, 140, 180), "grey": (120, 120, 125)}
HATS = ("none", "cap", "beanie")
BACKGROUNDS = ("studio", "park", "street", "beach", "office", "night city")
LIGHTINGS = ("daylight", "warm sunset", "dim", "cool blue", "light from the left", "light from the right")
MOTIONS = ("still", "turn left", "turn right", "nod", "smile", "blink", "talk", "move closer", "move away",
           "walk left", "walk right")
SPEEDS = ("slow", "normal", "fast")
# Motions that move the whole body across or into the frame. In the VAE's latent they change 25 to 1,000 times as
# much as the face-level motions (docs/toyworld.md, "Why the face-level motions carry so little of the loss").
BODY_MOTIONS = ("move closer", "move away", "walk left", "walk right")


@dataclass(frozen=True)
class Identity:
    """Traits that define a person; continuous values make every identity distinct even when the names agree."""

    number: int
    gender: str
    face_shape: str
    face_aspect: float
    skin_tone: str
    skin_rgb: tuple[int, int, int]
    eye_colour: str
    eye_spacing: str
    eye_offset: float
    hair_style: str
    hair_colour: str
    hair_rgb: tuple[int, int, int]
    brows: str
    glasses: str
    beard: str
    marks: str
    mark_points: tuple[tuple[float, float, float], ...]  # (u, v, radius) in face units
    nose_length: float
    mouth_width: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Scene:
    """What the prompt asks for (identity-free)."""

    garment: str
    clothes_colour: str
    hat: str
    hat_colour: str
    background: str
    lighting: str
    motion: str
    speed: str

    def to_dict(self) -> dict:
        return asdict(self)


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]))


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, amount: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in rgb)


def identity_numbers(split: str, count: int | None = None) -> list[int]:
    """The first `count` identity numbers of a split (all of `eval` when count is None)."""
    from ..errors import UserError

    if split not in SPLITS:
        raise UserError(f"unknown identity split {split!r}; choose one of {', '.join(SPLITS)}")
    start, stop = SPLITS[split]
    count = stop - start if count is None else count
    if count > stop - start:
        raise UserError(f"split {split!r} holds {stop - start} identities, asked for {count}")
    return list(range(start, start + count))


def sample_identity(number: int, world_seed: int = DEFAULT_WORLD_SEED) -> Identity:
    """The person numbered `number` in the world `world_seed` (same inputs, same person, on every machine)."""
    rng = _rng(world_seed, 1, number)
    gender = ("man", "woman")[rng.integers(2)]
    face_shape = FACE_SHAPES[rng.integers(len(FACE_SHAPES))]
    skin_tone = list(SKIN_TONES)[rng.integers(len(SKIN_TONES))]
    eye_colour = list(EYE_COLOURS)[rng.integers(len(EYE_COLOURS))]
    eye_spacing = EYE_SPACINGS[rng.integers(len(EYE_SPACINGS))]
    hair_style = HAIR_STYLES_BY_GENDER[gender][rng.choice(5, p=[0.3, 0.2, 0.2, 0.15, 0.15])]
    hair_colour = list(HAIR_COLOURS)[rng.choice(len(HAIR_COLOURS), p=[0.25, 0.25, 0.17, 0.13, 0.12, 0.08])]
    brows = BROWS[rng.integers(len(BROWS))]
    glasses = GLASSES[rng.choice(3, p=[0.55, 0.225, 0.225])]
    beard = BEARDS[rng.choice(5, p=[0.4, 0.15, 0.2, 0.15, 0.1])] if gender == "man" else "none"
    marks = MARKS[rng.choice(3, p=[0.4, 0.3, 0.3])]
    if marks == "freckles":
        n = int(rng.integers(8, 15))
        points = [(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(0.05, 0.45)), 0.055) for _ in range(n)]
    elif marks == "moles":
        n = int(rng.integers(1, 4))
        points = [(float(rng.uniform(-0.65, 0.65)), float(rng.uniform(-0.3, 0.6)), 0.085) for _ in range(n)]
    else:
        points = []
    return Identity(
        number=int(number), gender=gender, face_shape=face_shape,
        face_aspect=float(FACE_ASPECT[face_shape] * rng.uniform(0.95, 1.05)),
        skin_tone=skin_tone, skin_rgb=_jitter(SKIN_TONES[skin_tone], rng, 5.0),
        eye_colour=eye_colour, eye_spacing=eye_spacing,
        eye_offset=float(EYE_SPACING_VALUE[eye_spacing] + rng.uniform(-0.02, 0.02)),
        hair_style=hair_style, hair_colour=hair_colour, hair_rgb=_jitter(HAIR_COLOURS[hair_colour], rng, 6.0),
        brows=brows, glasses=glasses, beard=beard, marks=marks, mark_points=tuple(points),
        nose_length=float(rng.uniform(0.16, 0.26)), mouth_width=float(rng.uniform(0.26, 0.40)),
    )


def sample_scene(rng: np.random.Generator, motion: str | None = None, speed: str | None = None) -> Scene:
    """A random prompt-controlled setting; `motion`/`speed` fix those two when given."""
    hat = HATS[rng.choice(3, p=[0.6, 0.2, 0.2])]
    motion = motion or MOTIONS[rng.integers(len(MOTIONS))]
    speed = "normal" if motion == "still" else (speed or SPEEDS[rng.integers(len(SPEEDS))])
    colours = list(CLOTHES_COLOURS)
    return Scene(
        garment=GARMENTS[rng.integers(len(GARMENTS))], clothes_colour=colours[rng.integers(len(colours))],
        hat=hat, hat_colour=colours[rng.integers(len(colours))] if hat != "none" else "none",
        background=BACKGROUNDS[rng.integers(len(BACKGROUNDS))], lighting=LIGHTINGS[rng.integers(len(LIGHTINGS))],
        motion=motion, speed=speed,
    )


def scene_rng(world_seed: int, number: int, clip: int, salt: int = 2) -> np.random.Generator:
    """The generator of clip `clip` of identity `number` (scenes, small placement jitter)."""
    return _rng(world_seed, salt, number, clip)
