"""How FaceSim-dlib (max(0, cosine) of dlib's 128-d embeddings) relates to dlib's 0.6 same-person distance,
measured on the face photos available offline on this machine.

Impostor pairs: every pair of different people among skimage's astronaut (Eileen Collins), matplotlib's Grace
Hopper and, when insightface's package data is installed, the faces of its group photo t1.jpg and its Tom Hanks crop.
Genuine pairs: each face against re-renderings of the same photo (scale 0.5/0.75, horizontal flip, rotation
+-8 degrees, JPEG quality 30, brightness 0.7/1.3).
These are an upper bound for genuine similarity: two different photos of one person score lower.

    python benchmarks/facesim_dlib_calibration.py
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance


def photos() -> dict[str, np.ndarray]:
    import matplotlib
    from skimage import data

    out = {"astronaut": data.astronaut(),
           "grace_hopper": np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB"))}
    try:
        import insightface

        folder = Path(insightface.__file__).parent / "data" / "images"
        if (folder / "t1.jpg").is_file():
            out["t1_group"] = np.asarray(Image.open(folder / "t1.jpg").convert("RGB"))
        if (folder / "Tom_Hanks_54745.png").is_file():
            hanks = Image.open(folder / "Tom_Hanks_54745.png").convert("RGB").resize((336, 336), Image.Resampling.BICUBIC)
            out["tom_hanks"] = np.asarray(hanks)
    except ImportError:
        pass
    return out


def variants(image: np.ndarray) -> dict[str, np.ndarray]:
    img = Image.fromarray(image)
    out = {}
    for s in (0.5, 0.75):
        out[f"scale{s}"] = img.resize((int(img.width * s), int(img.height * s)), Image.Resampling.BILINEAR)
    out["flip"] = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for a in (-8, 8):
        out[f"rot{a}"] = img.rotate(a, resample=Image.Resampling.BILINEAR, fillcolor=(128, 128, 128))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=30)
    out["jpeg30"] = Image.open(io.BytesIO(buffer.getvalue()))
    for b in (0.7, 1.3):
        out[f"bright{b}"] = ImageEnhance.Brightness(img).enhance(b)
    return {k: np.asarray(v.convert("RGB")) for k, v in out.items()}


def main() -> None:
    from proteus_id.identity.dlib_faces import shared_dlib_faces

    faces = shared_dlib_faces()
    people: dict[str, np.ndarray] = {}
    genuine = []
    for name, image in photos().items():
        found = faces.detect(image, upsample=1)
        if not found:
            print(f"{name}: no face found, left out")
            continue
        for k, face in enumerate(found if name == "t1_group" else found[:1]):
            who = f"{name}#{k}" if name == "t1_group" else name
            ref = faces.embed(image, face)
            people[who] = ref
            if name == "t1_group":
                continue  # group faces are small; used as impostors only
            for vname, v in variants(image).items():
                vf = faces.detect(v, upsample=1)
                if vf:
                    genuine.append((who, vname, ref, faces.embed(v, vf[0])))
    norms = np.array([np.linalg.norm(v) for v in people.values()])
    impostor = [(a, b, people[a], people[b]) for a, b in itertools.combinations(people, 2)]

    def stats(pairs):
        d = np.array([np.linalg.norm(x - y) for *_, x, y in pairs])
        c = np.array([max(0.0, float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))) for *_, x, y in pairs])
        return d, c

    gd, gc = stats(genuine)
    idist, ic = stats(impostor)
    r = float(norms.mean())
    print(f"people: {len(people)}; embedding norms {norms.min():.3f}..{norms.max():.3f} (mean {r:.3f})")
    print(f"genuine pairs (same photo re-rendered): {len(gd)}; distance {gd.min():.3f}..{gd.max():.3f} "
          f"(mean {gd.mean():.3f}); max(0,cos) {gc.min():.4f}..{gc.max():.4f} (mean {gc.mean():.4f})")
    print(f"impostor pairs (different people): {len(idist)}; distance {idist.min():.3f}..{idist.max():.3f} "
          f"(mean {idist.mean():.3f}); max(0,cos) {ic.min():.4f}..{ic.max():.4f} (mean {ic.mean():.4f})")
    print(f"dlib's rule d < 0.6 <=> cos > 1 - 0.36 / (2 r^2) = {1 - 0.36 / (2 * r * r):.4f} at the mean norm r = {r:.3f}")
    print(f"pairs on the right side of d = 0.6: genuine {np.mean(gd < 0.6):.0%}, impostor {np.mean(idist >= 0.6):.0%}")


if __name__ == "__main__":
    main()
