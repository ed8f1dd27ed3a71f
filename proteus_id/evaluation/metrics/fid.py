"""Face FID: a real, set-level Frechet Inception Distance between the reference faces and the generated faces.

Sets: real = one face crop per distinct reference photo of the run; generated = the face crop of every sampled
frame that has a face, over all videos. Both are dlib's aligned chip at 299 px (eyes level, 25% padding), so the
two sets are cropped the same way. Features: InceptionV3 pool (2048-d, see inception.py).
FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)), the matrix square root by scipy.linalg.sqrtm (with
the usual small diagonal offset when the product is singular). Sample sizes are reported with it: FID is biased
upwards for small sets, so only FIDs with similar set sizes compare. A suite of 150 identities has 150 real faces,
far fewer than the 2048 dimensions, so its covariance is low-rank; the number is still a distance between sets.

The ConsisID scripts call the distance between one reference crop and one frame crop "FID" (with a covariance of
one sample); that is not an FID and is not computed here. Per video we report, under its own name,
`inception_face_distance`: the squared distance between the mean Inception feature of the video's faces and the
reference face's feature (lower = closer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Metric, MetricUnavailable, NotApplicable, file_identity
from .faces import FaceAnalysis, shared_face_analysis


def frechet_distance(real: np.ndarray, fake: np.ndarray, eps: float = 1e-6) -> float:
    """FID between two feature sets (N, D), (M, D); each needs at least 2 samples."""
    from scipy import linalg

    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.atleast_2d(np.cov(real, rowvar=False)), np.atleast_2d(np.cov(fake, rowvar=False))
    diff = mu1 - mu2
    covmean = _sqrtm(linalg, s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = _sqrtm(linalg, (s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real  # numerical noise from sqrtm on a near-singular product
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def _sqrtm(linalg, matrix: np.ndarray) -> np.ndarray:
    out = linalg.sqrtm(matrix)
    return out[0] if isinstance(out, tuple) else out  # older scipy returns (sqrtm, error estimate) on request only


class FaceFID(Metric):
    name = "fid"
    group = "distribution"
    columns = ("inception_face_distance",)
    higher_is_better = {"inception_face_distance": False, "face_fid": False}
    description = "set-level FID between reference faces and generated faces (InceptionV3 pool features)"

    def __init__(self, faces: FaceAnalysis, weights: Path, device: str = "cpu"):
        from .inception import load_inception

        self.faces, self.weights, self.device = faces, Path(weights), device
        self.model = load_inception(weights, device)

    def _features(self, video, row):
        from .inception import inception_features

        def run():
            if row.image is None:
                raise NotApplicable("no reference image in the manifest row")
            ref_image, ref_face = self.faces.reference(row.image)
            if ref_face is None:
                raise NotApplicable(f"no face found in the reference image {Path(row.image).name}")
            ref = inception_features(self.model, [self.faces.fid_crop(ref_image, ref_face)], self.device)
            found = [f for f in self.faces.video_faces(video) if f is not None]
            crops = [self.faces.fid_crop(video.frames[f.frame_index], f) for f in found]
            return ref, inception_features(self.model, crops, self.device)

        return video.cached("fid:features", run)

    def compute(self, video, row):
        ref, gen = self._features(video, row)
        if len(gen) == 0:
            raise NotApplicable("no face in any sampled frame")
        diff = gen.mean(0) - ref[0]
        return {"inception_face_distance": float(diff @ diff)}

    def collect(self, video, row):
        try:
            ref, gen = self._features(video, row)
        except NotApplicable:
            return None
        return {"reference": ref.astype(np.float32), "generated": gen.astype(np.float32),
                "reference_id": np.frombuffer(str(row.image).encode(), dtype=np.uint8)}

    def reduce(self, collected):
        real, seen, fake = [], set(), []
        for item in collected:
            if item is None:
                continue
            ref_id = bytes(item["reference_id"]).decode()
            if ref_id not in seen:
                seen.add(ref_id)
                real.append(item["reference"])
            if len(item["generated"]):
                fake.append(item["generated"])
        real = np.concatenate(real) if real else np.zeros((0, 2048))
        fake = np.concatenate(fake) if fake else np.zeros((0, 2048))
        out = {"face_fid_real_faces": int(len(real)), "face_fid_generated_faces": int(len(fake))}
        if len(real) < 2 or len(fake) < 2:
            out["face_fid_note"] = (f"not computed: FID needs at least 2 faces per set "
                                    f"({len(real)} reference, {len(fake)} generated)")
            return out
        out["face_fid"] = frechet_distance(real, fake)
        return out

    def fingerprint(self) -> str:
        return f"{self.name}:{file_identity(self.weights)}:up={self.faces.frame_upsample}"

    def describe(self):
        variant = "pytorch-fid (TF FID network)" if self.model.fid_variant else "torchvision ImageNet"
        return {"description": self.description, "weights": str(self.weights), "variant": variant}


def fid_factory(config):
    from ...errors import MissingDependencyError

    if config.inception is None:
        raise MetricUnavailable("no InceptionV3 weights given (--inception PATH to pt_inception-2015-12-05-*.pth)")
    try:
        faces = shared_face_analysis(config.face_upsample)
    except MissingDependencyError as err:
        raise MetricUnavailable(str(err)) from err
    return FaceFID(faces, config.inception, config.device)
