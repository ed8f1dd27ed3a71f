"""Curation settings: one dataclass per stage, loaded from YAML, every key checked.

The defaults here are the documented defaults (configs/curate.yaml repeats them with comments; a test keeps the two
equal). A key that is not a setting is an error, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError


@dataclass
class ProbeConfig:
    min_duration_s: float = 1.0  # shorter files cannot hold a clip plus a reference frame
    min_short_side: int = 128  # pixels
    # a file whose header promises more frames than decode is truncated; accept up to this share missing
    max_missing_frames: float = 0.02


@dataclass
class ShotConfig:
    detector: str = "content"  # PySceneDetect ContentDetector ("content") or AdaptiveDetector ("adaptive")
    threshold: float = 27.0  # ContentDetector threshold (PySceneDetect's default)
    adaptive_threshold: float = 3.0  # AdaptiveDetector ratio (PySceneDetect's default)
    min_shot_frames: int = 8  # no two cuts closer than this
    analysis_width: int = 256  # frames are downscaled to this width for detection (PySceneDetect does the same)


@dataclass
class WindowConfig:
    min_frames: int = 49  # the release trains on 49 frames
    max_frames: int = 49
    stride_frames: int = 0  # 0: windows do not overlap (stride = max_frames)
    shot_margin_frames: int = 2  # frames dropped at each shot boundary (fades, cut blur)


@dataclass
class FaceConfig:
    detector: str = "dlib-hog"  # dlib-hog (offline default), dlib-cnn (shipped mmod weights, slow on CPU), yunet
    weights: str | None = None  # yunet: the face_detection_yunet ONNX file
    min_score: float = 0.3  # detector confidence (dlib HOG scores real faces well above 0.5)
    upsample: int = 1  # dlib: image pyramid upsampling (1 finds faces down to ~40 px)
    # the detector runs on this many frames per second of video (the stride in frames follows the frame rate);
    # boxes of the frames in between are interpolated along the track
    samples_per_second: float = 2.0
    # dlib identity embeddings (~0.14 s each on one CPU core) on this many of those samples per second
    embeddings_per_second: float = 1.0
    detect_width: int = 480  # frames are downscaled to at most this width for detection; boxes are scaled back
    min_face_frames: float = 0.8  # share of sampled frames in the window that must hold the person's face
    max_multi_face_frames: float = 0.1  # share of sampled frames allowed to show a second face
    second_face_ratio: float = 0.25  # a second face counts if its area is at least this share of the main face's
    min_face_size: float = 0.08  # median face box short side / frame short side
    min_sharpness: float = 40.0  # variance of the Laplacian on the face crop resized to 128 px
    min_brightness: float = 40.0  # mean luma of the face crop, 0..255
    max_brightness: float = 225.0
    max_identity_distance: float = 0.6  # dlib's same-person rule: embedding distance to the clip's mean
    max_track_jump: float = 1.0  # a box centre moving more than this x box size per sample breaks the track


@dataclass
class MotionConfig:
    flow_preset: str = "medium"  # OpenCV DIS preset
    flow_width: int = 256  # frames downscaled to this width for flow
    pairs_per_second: float = 4.0  # flow on the frame pair (t, t+1) this many times per second of video
    # motion = mean flow magnitude in frame diagonals per second (resolution- and frame-rate-free)
    min_motion: float = 0.01  # below: still
    max_motion: float = 0.6  # above: chaotic (whip pans, shaking, flashes)


@dataclass
class ReferenceConfig:
    min_gap_frames: int = 1  # the reference frame is at least this far outside the clip window
    min_face_size: float = 0.08
    min_sharpness: float = 40.0


@dataclass
class MaskConfig:
    source: str = "box"  # box: face box and face-derived body box; segmentation: a transformers model (model=path)
    model: str | None = None  # local image-segmentation model folder (transformers), used inside the person box
    format: str = "rle"  # rle (inside the manifest) | png (files under DATASET_DIR/masks/) | none
    person_width: float = 3.0  # body box from the face box: width in face widths
    person_top: float = 0.5  # face heights above the face box
    person_height: float = 7.0  # face heights below the face top (clipped at the frame)


@dataclass
class CaptionConfig:
    source: str = "none"  # none (rows marked uncaptioned) | csv | vlm
    csv: str | None = None  # columns: caption, identity_prompt and either id, or video [+ start_frame, end_frame]
    model: str | None = None  # local vision-language model folder (transformers image-text-to-text)
    frames: int = 3  # frames of the clip shown to the VLM
    max_new_tokens: int = 160
    caption_prompt: str = (
        "Describe this video clip in detail: the setting, the person's actions and expression, and how the camera "
        "moves. One paragraph."
    )
    identity_prompt: str = (
        "Describe this person's appearance in one sentence: gender, approximate age, hair and clothing."
    )


@dataclass
class DedupConfig:
    hash_size: int = 8  # imagehash.phash: hash_size**2 bits
    max_distance: int = 6  # Hamming distance at or below which two frames are the same picture


@dataclass
class CurateConfig:
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    faces: FaceConfig = field(default_factory=FaceConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Changes whenever a setting (or the content of the caption CSV) changes: finished videos are redone."""
        payload = self.to_dict()
        if self.captions.csv and Path(self.captions.csv).is_file():
            payload["captions"]["csv_sha1"] = hashlib.sha1(Path(self.captions.csv).read_bytes()).hexdigest()
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def validate(self) -> "CurateConfig":
        w = self.windows
        if not 1 <= w.min_frames <= w.max_frames:
            raise UserError(f"windows: need 1 <= min_frames <= max_frames, got {w.min_frames} and {w.max_frames}")
        if self.shots.detector not in ("content", "adaptive"):
            raise UserError(f"shots.detector must be 'content' or 'adaptive', got {self.shots.detector!r}")
        if self.faces.detector not in ("dlib-hog", "dlib-cnn", "yunet"):
            raise UserError(f"faces.detector must be dlib-hog, dlib-cnn or yunet, got {self.faces.detector!r}")
        if self.faces.detector == "yunet" and not self.faces.weights:
            raise UserError("faces.detector yunet needs faces.weights: the face_detection_yunet .onnx file")
        rates = (self.faces.samples_per_second, self.faces.embeddings_per_second, self.motion.pairs_per_second)
        if min(rates) <= 0:
            raise UserError("faces.samples_per_second, faces.embeddings_per_second and motion.pairs_per_second must be > 0")
        if self.motion.min_motion >= self.motion.max_motion:
            raise UserError("motion.min_motion must be below motion.max_motion")
        if self.masks.source not in ("box", "segmentation"):
            raise UserError(f"masks.source must be 'box' or 'segmentation', got {self.masks.source!r}")
        if self.masks.source == "segmentation" and not self.masks.model:
            raise UserError("masks.source segmentation needs masks.model: a local transformers segmentation folder")
        if self.masks.format not in ("rle", "png", "none"):
            raise UserError(f"masks.format must be rle, png or none, got {self.masks.format!r}")
        c = self.captions
        if c.source not in ("none", "csv", "vlm"):
            raise UserError(f"captions.source must be none, csv or vlm, got {c.source!r}")
        if c.source == "csv" and not (c.csv and Path(c.csv).is_file()):
            raise UserError(f"captions.source csv needs captions.csv to name an existing file, got {c.csv!r}")
        if c.source == "vlm" and not (c.model and Path(c.model).is_dir()):
            raise UserError(f"captions.source vlm needs captions.model to name a local model folder, got {c.model!r}")
        return self


def stride_for(fps: float, per_second: float) -> int:
    """Every how many frames to sample to get `per_second` samples a second (at least every frame)."""
    return max(1, int(round(fps / per_second)))


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise UserError(f"config section {where or 'top level'} must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"unknown config key(s) {', '.join(where + k for k in unknown)}; known: {', '.join(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, default, where + name)
    return cls(**kwargs)


def _coerce(value, default, key: str):
    if value is None:
        return value
    if default is None:  # the optional settings are all paths
        if not isinstance(value, str):
            raise UserError(f"config {key} must be a path (text), got {value!r}")
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if not isinstance(value, bool):
            raise UserError(f"config {key} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and isinstance(value, (int, float)):
        if isinstance(default, int) and not isinstance(value, int):
            raise UserError(f"config {key} must be a whole number, got {value!r}")
        return type(default)(value)
    if isinstance(default, str) and isinstance(value, str):
        return value
    raise UserError(f"config {key} must be a {type(default).__name__}, got {value!r}")


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> CurateConfig:
    """Defaults, then the YAML file, then `overrides` ({"section": {"key": value}}); validated."""
    import yaml

    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file {path} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise UserError(f"config file {path} is not valid YAML: {' '.join(str(err).split())}") from err
        if not isinstance(values, dict):
            raise UserError(f"config file {path} must hold a mapping of sections, got {type(values).__name__}")
        values = _resolve_paths(CurateConfig, values, path.resolve().parent)
    for section, entries in (overrides or {}).items():
        if values.get(section) is None:  # absent, or an empty section in the YAML
            values[section] = {}
        if not isinstance(values[section], dict):
            raise UserError(f"config section {section} must be a mapping, got {type(values[section]).__name__}")
        values[section].update(entries)
    return _build(CurateConfig, values, "").validate()


def _resolve_paths(cls, values: dict, base: Path) -> dict:
    """Relative paths in a YAML file (the settings whose default is None: weights, models, CSVs) are relative to
    the file's folder, so a config works from any working directory."""
    out = dict(values)
    for f in dataclasses.fields(cls):
        value = out.get(f.name)
        default = getattr(cls(), f.name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            out[f.name] = _resolve_paths(type(default), value, base)
        elif default is None and isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            out[f.name] = str(base / value)
    return out


def config_from_dict(values: dict) -> CurateConfig:
    return _build(CurateConfig, values, "").validate()
