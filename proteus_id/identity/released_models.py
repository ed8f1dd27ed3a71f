"""Loading the released face stack from `<model>/face_encoder/` only (nothing is ever downloaded).

    models/antelopev2/scrfd_10g_bnkps.onnx   insightface SCRFD detector (5 keypoints)       onnxruntime
    models/antelopev2/glintr100.onnx         insightface ArcFace (512-d, not normalised)   onnxruntime
    detection_Resnet50_Final.pth             facexlib RetinaFace (alignment keypoints)     torch, weights_only
    parsing_bisenet.pth                      facexlib BiSeNet face parsing (19 labels)      torch, weights_only
    EVA02_CLIP_L_336_psz14_s6B.pt            EVA02-CLIP-L-14-336 (visual tower used)        torch, weights_only

Each loader raises a UserError naming the missing file or package (`pip install 'proteus-id[released-face]'`).
The ONNX execution provider follows the device: CUDA when the device is cuda and onnxruntime has it, else CPU.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import MissingDependencyError, UserError, require

logger = logging.getLogger("proteus_id")

FILES = {
    "detector": ("models/antelopev2/scrfd_10g_bnkps.onnx", "insightface antelopev2 face detector"),
    "arcface": ("models/antelopev2/glintr100.onnx", "insightface antelopev2 ArcFace recogniser"),
    "retinaface": ("detection_Resnet50_Final.pth", "facexlib RetinaFace-ResNet50 detector"),
    "parser": ("parsing_bisenet.pth", "facexlib BiSeNet face parser"),
    "eva": ("EVA02_CLIP_L_336_psz14_s6B.pt", "EVA02-CLIP-L-14-336"),
}
# importable module -> what needs it (all in the released-face extra)
PACKAGES = {
    "onnxruntime": "antelopev2 (ONNX)",
    "insightface": "antelopev2 detection and ArcFace",
    "facexlib": "RetinaFace alignment and BiSeNet parsing",
    "torchvision": "facexlib's RetinaFace",
    "consisid_eva_clip": "EVA02-CLIP-L-14-336",
}
EXTRA = "released-face"


def check_available(face_dir: Path | None) -> None:
    """Cheap check (no loading): every file present and every package importable, else one UserError listing all."""
    if face_dir is None:
        raise UserError(
            "the released face backend needs the face models in <model>/face_encoder/ and this model folder has none: "
            "copy face_encoder/ from the released weights, or pass --face-features with precomputed features"
        )
    missing = [f"{rel} ({what})" for rel, what in FILES.values() if not (face_dir / rel).is_file()]
    if missing:
        raise UserError(f"the released face backend is missing in {face_dir}: " + "; ".join(missing)
                        + ". Copy them from the released weights' face_encoder/ folder")
    packages = [f"{name} (for {why})" for name, why in PACKAGES.items() if importlib.util.find_spec(name) is None]
    if packages:
        raise MissingDependencyError("the released face backend needs " + ", ".join(packages)
                                     + f": pip install 'proteus-id[{EXTRA}]'")


def onnx_providers(device: str) -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        logger.warning("onnxruntime has no CUDA provider here (install onnxruntime-gpu); antelopev2 runs on the CPU")
    return ["CPUExecutionProvider"]


def load_antelopev2(face_dir: Path, device: str, det_size: int = 640):
    """(SCRFD detector, ArcFace recogniser) through insightface's model zoo on onnxruntime."""
    require("onnxruntime", EXTRA, "antelopev2")
    model_zoo = require("insightface.model_zoo", EXTRA, "antelopev2")
    providers = onnx_providers(device)
    ctx_id = 0 if providers[0] == "CUDAExecutionProvider" else -1
    detector = model_zoo.get_model(str(face_dir / FILES["detector"][0]), providers=providers)
    arcface = model_zoo.get_model(str(face_dir / FILES["arcface"][0]), providers=providers)
    if getattr(detector, "taskname", None) != "detection" or getattr(arcface, "taskname", None) != "recognition":
        raise UserError(f"{face_dir / 'models/antelopev2'} does not hold the antelopev2 detector and recogniser "
                        "(insightface did not recognise them by their inputs and outputs)")
    detector.prepare(ctx_id, input_size=(det_size, det_size), det_thresh=0.5)
    arcface.prepare(ctx_id)
    return detector, arcface


def load_state_dict(path: Path, what: str) -> dict:
    """A pickled checkpoint, read with weights_only=True (tensors and plain containers only)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure here means the file is not a plain checkpoint
        raise UserError(f"{path} ({what}) cannot be read as a plain weights file ({err.__class__.__name__}: {err})") from err
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}


def _load_strict(module: torch.nn.Module, state: dict, path: Path) -> None:
    result = module.load_state_dict(state, strict=False)
    # buffers the module computes itself (e.g. rotary tables) may be absent from a checkpoint; parameters may not
    params = {name for name, _ in module.named_parameters()}
    missing = [k for k in result.missing_keys if k in params]
    if missing or result.unexpected_keys:
        raise UserError(f"{path} does not fit its network: missing {missing[:6]}, unexpected {result.unexpected_keys[:6]}")


def load_retinaface(face_dir: Path, device: str):
    require("torchvision", EXTRA, "facexlib's RetinaFace")
    retinaface = require("facexlib.detection.retinaface", EXTRA, "RetinaFace alignment")
    path = face_dir / FILES["retinaface"][0]
    model = retinaface.RetinaFace(network_name="resnet50", half=False, device=torch.device(device))
    _load_strict(model, load_state_dict(path, FILES["retinaface"][1]), path)
    return model.eval().to(device)


def load_bisenet(face_dir: Path, device: str) -> torch.nn.Module:
    bisenet = require("facexlib.parsing.bisenet", EXTRA, "BiSeNet face parsing")
    path = face_dir / FILES["parser"][0]
    model = bisenet.BiSeNet(num_class=19)
    _load_strict(model, load_state_dict(path, FILES["parser"][1]), path)
    return model.eval().to(device)


@dataclass
class EvaVision:
    model: torch.nn.Module  # called as model(x, return_all_features=False, return_hidden=True, shuffle=False)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size: int


def load_eva(face_dir: Path, device: str, dtype: torch.dtype) -> EvaVision:
    eva_clip = require("consisid_eva_clip", EXTRA, "EVA02-CLIP-L-14-336")
    constants = require("consisid_eva_clip.constants", EXTRA, "EVA02-CLIP-L-14-336")
    path = face_dir / FILES["eva"][0]
    # built without pretrained weights (no download), then filled from the local file, visual tower only
    model, _, _ = eva_clip.create_model_and_transforms("EVA02-CLIP-L-14-336", pretrained=None, force_custom_clip=True)
    visual = model.visual
    state = load_state_dict(path, FILES["eva"][1])
    # rotary tables are computed by the network itself; the release's loader drops them from checkpoints too
    visual_state = {k[len("visual."):]: v for k, v in state.items()
                    if k.startswith("visual.") and "freqs_cos" not in k and "freqs_sin" not in k}
    if not visual_state:
        raise UserError(f"{path} has no visual.* weights: not an EVA02-CLIP checkpoint")
    _load_strict(visual, visual_state, path)
    mean = getattr(visual, "image_mean", constants.OPENAI_DATASET_MEAN)
    std = getattr(visual, "image_std", constants.OPENAI_DATASET_STD)
    mean = tuple(mean) if isinstance(mean, (list, tuple)) else (mean,) * 3
    std = tuple(std) if isinstance(std, (list, tuple)) else (std,) * 3
    size = visual.image_size
    size = size[0] if isinstance(size, (list, tuple)) else size
    return EvaVision(visual.eval().to(device, dtype=dtype), mean, std, int(size))
