"""What an evaluation run uses: frames per video, which metrics, and where each metric's weights are.

Weights come only from local paths: a flag, a config file (YAML or JSON with the same keys), or a folder searched
for the files' usual names (`weights_dir`). Nothing is downloaded; a metric whose weights are not found is skipped
and the report says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UserError
from .video import DEFAULT_SAMPLE_FRAMES

# usual file names under a weights folder (searched recursively), per weight slot
KNOWN_WEIGHT_NAMES = {
    "arcface": ("glintr100.onnx", "w600k_r50.onnx", "arcface*.onnx"),
    "curricularface": ("glint360k_curricular_face_r101_backbone.bin", "*curricular*face*.bin", "*curricular*face*.pth"),
    "inception": ("pt_inception-2015-12-05-*.pth", "inception_v3_google-*.pth", "*inception*.pth"),
    "clip": ("clip-vit-base-patch32",),
}
WEIGHT_SLOTS = tuple(KNOWN_WEIGHT_NAMES)


class EvalConfigError(UserError):
    """A bad evaluation setting (unknown key, missing weights file named explicitly, ...)."""


@dataclass
class EvalConfig:
    sample_frames: int = DEFAULT_SAMPLE_FRAMES
    metrics: list[str] | None = None  # None: every registered metric that can run
    arcface: Path | None = None  # insightface ArcFace recognition ONNX (glintr100.onnx of antelopev2)
    curricularface: Path | None = None  # CurricularFace IR-101 state dict (glint360k_curricular_face_r101_backbone.bin)
    clip: Path | None = None  # transformers folder of CLIP ViT-B/32
    inception: Path | None = None  # InceptionV3 state dict (pytorch-fid's pt_inception or torchvision's)
    face_upsample: int | None = None  # dlib HOG upsampling for video frames; None: 1 if the short side < 400 px else 0
    flow_preset: str = "medium"  # OpenCV DIS preset for the motion metrics
    device: str = "cpu"
    contact_frames: int = 8  # frames per contact sheet
    extra: dict[str, Any] = field(default_factory=dict)  # settings for plug-in metrics

    def __post_init__(self) -> None:
        for slot in WEIGHT_SLOTS:
            value = getattr(self, slot)
            if value is not None and not isinstance(value, Path):
                setattr(self, slot, Path(value).expanduser())
        if self.sample_frames < 2:
            raise EvalConfigError(f"sample_frames must be at least 2, got {self.sample_frames}")

    @classmethod
    def from_file(cls, path: str | Path) -> "EvalConfig":
        path = Path(path)
        if not path.is_file():
            raise EvalConfigError(f"evaluation config {path} does not exist")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        except Exception as err:  # yaml and json raise different types; both mean the file is malformed
            raise EvalConfigError(f"{path} is not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: {err}") from err
        if not isinstance(data, dict):
            raise EvalConfigError(f"{path} must hold a mapping of settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"weights_dir"})
        if unknown:
            raise EvalConfigError(f"{path}: unknown settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        weights_dir = data.pop("weights_dir", None)
        base = path.resolve().parent
        for slot in WEIGHT_SLOTS:
            if data.get(slot):
                p = Path(data[slot]).expanduser()
                data[slot] = p if p.is_absolute() else base / p
        config = cls(**data)
        if weights_dir:
            wd = Path(weights_dir).expanduser()
            config.fill_from_weights_dir(wd if wd.is_absolute() else base / wd)
        return config

    def fill_from_weights_dir(self, folder: str | Path) -> dict[str, Path]:
        """Fill the weight slots not set yet with files found under `folder` by their usual names."""
        folder = Path(folder)
        if not folder.is_dir():
            raise EvalConfigError(f"weights folder {folder} does not exist")
        found = {}
        for slot, patterns in KNOWN_WEIGHT_NAMES.items():
            if getattr(self, slot) is not None:
                continue
            for pattern in patterns:
                hits = sorted(folder.rglob(pattern))
                if hits:
                    setattr(self, slot, hits[0])
                    found[slot] = hits[0]
                    break
        return found

    def check_explicit_paths(self) -> None:
        """A weights path the user named but that does not exist is a typo to report, not a metric to skip."""
        for slot in WEIGHT_SLOTS:
            value = getattr(self, slot)
            if value is not None and not value.exists():
                raise EvalConfigError(f"{slot} weights {value} do not exist (remove the setting to skip that metric)")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for slot in WEIGHT_SLOTS:
            data[slot] = str(data[slot]) if data[slot] else None
        return data
