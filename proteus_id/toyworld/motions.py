"""Motions of the world as per-frame pose curves: head yaw/pitch, placement, scale, mouth and eyelids.

Every motion is large enough to see at 64 px (a turn moves the eyes and nose by about a third of the face width, a
walk crosses a third to most of the frame, moving closer grows the person by up to 60%), and the speed changes
the rate, so the same motion at another speed is a different curve. "Left" and "right" are screen directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = {"slow": 0.55, "normal": 1.0, "fast": 1.9}
CYCLES = {"slow": 1.0, "normal": 2.0, "fast": 3.0}
MAX_YAW = 1.05  # radians (60 degrees)


@dataclass
class Pose:
    yaw: float = 0.0  # radians, negative = the face turns towards screen left
    pitch: float = 0.0  # radians, positive = looks down
    dx: float = 0.0  # head-centre offset, frame widths
    dy: float = 0.0
    scale: float = 1.0
    smile: float = 0.0  # 0 neutral .. 1 full smile
    mouth_open: float = 0.0  # 0 closed .. 1 open
    eye_open: float = 1.0  # 0 closed .. 1 open


def _ease(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def pose_track(motion: str, speed: str, num_frames: int, rng: np.random.Generator | None = None) -> list[Pose]:
    """Per-frame poses of `motion` at `speed`; `rng` adds small clip-to-clip variation (placement, phase)."""
    rng = rng or np.random.default_rng(0)
    p = np.linspace(0.0, 1.0, num_frames)
    rate, cycles = RATE[speed], CYCLES[speed]
    base_dx = float(rng.uniform(-0.05, 0.05))
    base_scale = float(rng.uniform(0.92, 1.08))
    phase = float(rng.uniform(-0.1, 0.1))
    n = num_frames
    zeros = np.zeros(n)
    yaw, pitch, dx, dy = zeros.copy(), zeros.copy(), np.full(n, base_dx), zeros.copy()
    scale, smile, mouth, eyes = np.full(n, base_scale), zeros.copy(), zeros.copy(), np.ones(n)
    if motion == "still":
        pass
    elif motion in ("turn left", "turn right"):
        sign = -1.0 if motion == "turn left" else 1.0
        yaw = sign * MAX_YAW * _ease(p * rate * 1.1)
    elif motion == "nod":
        pitch = 0.45 * (1 - np.cos(2 * np.pi * cycles * p)) / 2
        dy = 0.025 * (1 - np.cos(2 * np.pi * cycles * p)) / 2
    elif motion == "smile":
        smile = _ease((p - 0.1 + phase) * rate * 1.6)
    elif motion == "blink":
        count = {"slow": 1, "normal": 2, "fast": 4}[speed]
        centres = (np.arange(count) + 0.5) / count * (n - 1)
        frames = np.arange(n)
        eyes = np.min(np.clip(np.abs(frames[None] - centres[:, None]) / 1.2, 0, 1), axis=0)
    elif motion == "talk":
        talk_cycles = {"slow": 2.0, "normal": 3.0, "fast": 5.0}[speed]
        mouth = (1 - np.cos(2 * np.pi * talk_cycles * (p + phase))) / 2
        pitch = 0.05 * np.sin(2 * np.pi * talk_cycles * p)
    elif motion == "move closer":
        scale = base_scale * (1 + 0.6 * _ease(p * rate * 1.1))
        dy = 0.06 * _ease(p * rate * 1.1)
    elif motion == "move away":
        scale = base_scale * (1 - 0.42 * _ease(p * rate * 1.1))
        dy = -0.04 * _ease(p * rate * 1.1)
    elif motion in ("walk left", "walk right"):
        sign = -1.0 if motion == "walk left" else 1.0
        travel = {"slow": 0.3, "normal": 0.55, "fast": 0.8}[speed]
        dx = sign * travel * (p - 0.5)
        dy = 0.015 * np.abs(np.sin(np.pi * 2 * cycles * p))
        yaw = np.full(n, sign * 0.45)
        scale = np.full(n, base_scale * 0.85)
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return [
        Pose(float(yaw[i]), float(pitch[i]), float(dx[i]), float(dy[i]), float(scale[i]), float(smile[i]),
             float(mouth[i]), float(eyes[i]))
        for i in range(n)
    ]
