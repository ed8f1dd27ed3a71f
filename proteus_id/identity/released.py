"""The released face stack (PAPER.md section 3; the same as ConsisID's), as a face backend of kind "released".

    photo (long side <= 1024, as released)
      -> antelopev2 SCRFD (640): the largest face, 5 keypoints; ArcFace glintr100 on it: 512-d, not normalised
      -> facexlib RetinaFace (confidence 0.97): 5 keypoints -> similarity warp to the 512 x 512 FFHQ layout
         (if antelopev2 found no face: ArcFace runs on this aligned crop instead, as released)
      -> BiSeNet parsing: background, neck, necklace, clothes, hat, ears, earrings painted white
         (labels 0, 14, 15, 16, 18, 7, 8, 9); colour crop = what the pipeline VAE-encodes; grey copy x3 for EVA
      -> EVA02-CLIP-L-14-336 on the grey crop (bicubic to 336, CLIP mean/std): 768-d embedding, L2-normalised,
         and the block inputs at depth 4, 8, 12, 16, 20 (each (1, 577, 1024))
    id_cond = concat(ArcFace 512, EVA 768) -> (1, 1, 1280); id_vit_hidden = the 5 states

Two deliberate differences from the release: with several faces, the alignment uses the RetinaFace detection that
overlaps antelopev2's largest face (the release aligned the face nearest the centre, which can be another person);
and if RetinaFace misses a face that antelopev2 found, antelopev2's keypoints align it instead of failing.

The parts are loaded on the first photo, so asking whether the backend is available (`proteus-id info`) is cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .alignment import align_face
from .backends import register_backend
from .detection import box_iou, choose_largest
from .features import IdentityFeatures, IdentitySpec
from .image_io import load_image
from . import released_models

logger = logging.getLogger("proteus_id")

WORKING_SIDE = 1024
RETINAFACE_CONFIDENCE = 0.97
WHITE_LABELS = (0, 16, 18, 7, 8, 9, 14, 15)  # background, cloth, hat, ears, earring, neck, necklace
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class ReleasedFaceModels:
    """The five parts, each with the interface of the released tools (stand-ins in tests follow the same)."""

    detector: object  # .detect(bgr, max_num=0) -> (dets (N, 5): box + score, kpss (N, 5, 2))   [insightface SCRFD]
    arcface: object  # .get(bgr, face) -> (512,) and .get_feat(bgr crop) -> (1, 512)        [insightface ArcFaceONNX]
    retinaface: object  # .detect_faces(bgr, conf) -> (N, 15): box, score, 5 x (x, y)         [facexlib RetinaFace]
    parser: torch.nn.Module  # (1, 3, 512, 512) ImageNet-normalised RGB -> (logits (1, 19, 512, 512), ...)  [BiSeNet]
    eva: released_models.EvaVision
    device: str = "cpu"
    dtype: torch.dtype = torch.float32

    @classmethod
    def load(cls, face_dir: Path, device: str) -> "ReleasedFaceModels":
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
        detector, arcface = released_models.load_antelopev2(face_dir, device)
        return cls(
            detector, arcface, released_models.load_retinaface(face_dir, device),
            released_models.load_bisenet(face_dir, device), released_models.load_eva(face_dir, device, dtype),
            device, dtype,
        )


class ReleasedFaceBackend:
    kind = "released"
    produces = IdentitySpec(kind="released", id_cond_dim=1280, vit_dim=1024, num_vit_states=5)

    def __init__(self, face_dir: Path | None = None, device: str = "cpu", models: ReleasedFaceModels | None = None):
        if models is None:
            released_models.check_available(face_dir)
        self.face_dir, self.device, self._models = face_dir, device, models

    @property
    def models(self) -> ReleasedFaceModels:
        if self._models is None:
            self._models = ReleasedFaceModels.load(self.face_dir, self.device)
        return self._models

    @torch.no_grad()
    def extract(self, image, name: str | None = None) -> IdentityFeatures:
        m = self.models
        rgb = _resize_long_side(load_image(image, name=name), WORKING_SIDE)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])

        # 1. antelopev2: largest face, its keypoints and the ArcFace embedding
        dets, kpss = m.detector.detect(bgr, max_num=0)
        ante = None
        if len(dets):
            faces = [(dets[i, :4], float(dets[i, 4]), kpss[i]) for i in range(len(dets))]
            ante = choose_largest(faces, lambda f: _area(f[0]), name)

        # 2. RetinaFace keypoints -> the aligned 512 crop
        retina = np.asarray(m.retinaface.detect_faces(bgr, RETINAFACE_CONFIDENCE)).reshape(-1, 15)
        align_kps = None
        if ante is not None:
            overlaps = [box_iou(ante[0], r[:4]) for r in retina]
            if overlaps and max(overlaps) > 0.3:
                align_kps = retina[int(np.argmax(overlaps)), 5:15].reshape(5, 2)
            else:
                logger.info("RetinaFace did not confirm the face in %s; aligning on antelopev2's keypoints", name or "the photo")
                align_kps = np.asarray(ante[2]).reshape(5, 2)
        elif len(retina):
            chosen = choose_largest(list(retina), lambda r: _area(r[:4]), name)
            align_kps, retina_box = chosen[5:15].reshape(5, 2), chosen[:4]
        else:
            choose_largest([], _area, name)  # raises NoFaceError naming the photo
        aligned = align_face(rgb, align_kps, 512)

        if ante is not None:
            arc = np.asarray(m.arcface.get(bgr, _insightface_face(*ante)), np.float32).reshape(1, -1)
        else:
            logger.warning("antelopev2 found no face in %s; ArcFace runs on the aligned crop (as released)", name or "the photo")
            arc = np.asarray(m.arcface.get_feat(np.ascontiguousarray(aligned[:, :, ::-1])), np.float32).reshape(1, -1)

        # 3. parsing -> white background; colour crop for the VAE, grey crop for EVA
        x = torch.from_numpy(aligned).permute(2, 0, 1)[None].float().div(255).to(m.device)
        logits = m.parser(_normalise(x, IMAGENET_MEAN, IMAGENET_STD))[0]
        labels = logits.argmax(dim=1, keepdim=True)
        background = torch.isin(labels, torch.tensor(WHITE_LABELS, device=labels.device))
        white = torch.ones_like(x)
        grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).repeat(1, 3, 1, 1)
        colour_only = torch.where(background, white, x)
        grey_only = torch.where(background, white, grey)

        # 4. EVA02-CLIP on the grey crop
        eva_in = F.interpolate(grey_only, size=(m.eva.image_size, m.eva.image_size), mode="bicubic",
                               align_corners=False, antialias=True)
        eva_in = _normalise(eva_in, m.eva.mean, m.eva.std).to(m.dtype)
        embedding, hidden = m.eva.model(eva_in, return_all_features=False, return_hidden=True, shuffle=False)
        embedding = embedding.float()
        embedding = embedding / embedding.norm(p=2, dim=1, keepdim=True)

        id_cond = torch.cat([torch.from_numpy(arc).to(embedding.device), embedding], dim=-1).cpu()
        crop = _to_pil(colour_only)
        box = tuple(int(round(v)) for v in (ante[0] if ante is not None else retina_box))
        return IdentityFeatures(
            id_cond=id_cond.view(1, 1, -1),
            id_vit_hidden=[h.float().cpu() for h in hidden],
            face_crop=crop,
            parsed_crop=crop,
            aligned_crop=Image.fromarray(aligned),
            keypoints=np.asarray(ante[2] if ante is not None else align_kps, np.float32).reshape(5, 2),
            face_box=box,
            kind=self.kind,
        )


def _resize_long_side(rgb: np.ndarray, side: int) -> np.ndarray:
    """The release's downscale: OpenCV Lanczos to int(h * k) x int(w * k) when the long side exceeds `side`."""
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return rgb
    k = side / max(h, w)
    return cv2.resize(rgb, (int(w * k), int(h * k)), interpolation=cv2.INTER_LANCZOS4)


def _area(box) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    mean = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def _to_pil(x: torch.Tensor) -> Image.Image:
    array = (x[0].permute(1, 2, 0).clamp(0, 1) * 255).cpu().numpy().astype(np.uint8)
    return Image.fromarray(array)


def _insightface_face(box, score, kps):
    from insightface.app.common import Face

    return Face(bbox=np.asarray(box, np.float32), kps=np.asarray(kps, np.float32), det_score=score)


def _factory(face_encoder_dir, device: str) -> ReleasedFaceBackend:
    return ReleasedFaceBackend(face_encoder_dir, device)


register_backend("released", _factory)
