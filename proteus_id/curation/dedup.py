"""Stage 9, near-duplicate removal with perceptual hashes (imagehash.phash).

Each clip carries the phash of three of its frames (at about 1/4, 1/2 and 3/4 of the window). Two clips are near
duplicates when all three pairs are within `max_distance` bits: the same footage re-uploaded, re-encoded or
rescaled. Clips are visited in manifest order (video path, then start frame) and the first of a group is kept, so
the result does not depend on which worker finished first. Candidates are found through band buckets of the middle
hash (pigeonhole: with max_distance + 1 bands, two hashes within max_distance bits share at least one band), so the
cost stays near-linear in the number of clips.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..errors import require


def frame_phash(frame: np.ndarray, hash_size: int) -> str:
    imagehash = require("imagehash", "curate", "near-duplicate removal")
    from PIL import Image

    return str(imagehash.phash(Image.fromarray(frame), hash_size=hash_size))


def _bits(hex_hash: str) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(hex_hash), dtype=np.uint8))


def hamming(a: str, b: str) -> int:
    return int(np.count_nonzero(_bits(a) != _bits(b)))


def find_near_duplicates(hashes: list[list[str]], max_distance: int) -> dict[int, int]:
    """For clips in order, {index of a dropped clip: index of the kept clip it duplicates}."""
    bands = max_distance + 1
    buckets: dict[tuple[int, str], list[int]] = defaultdict(list)
    dropped: dict[int, int] = {}
    for i, clip in enumerate(hashes):
        if not clip:
            continue
        keys = _band_keys(clip[len(clip) // 2], bands)
        candidates = sorted({j for key in keys for j in buckets[key]})
        match = next(
            (j for j in candidates if len(hashes[j]) == len(clip) and all(hamming(a, b) <= max_distance for a, b in zip(hashes[j], clip))),
            None,
        )
        if match is not None:
            dropped[i] = match
            continue
        for key in keys:
            buckets[key].append(i)
    return dropped


def _band_keys(hex_hash: str, bands: int) -> list[tuple[int, str]]:
    bits = _bits(hex_hash)
    edges = np.linspace(0, bits.size, bands + 1).astype(int)
    return [(b, bits[edges[b] : edges[b + 1]].tobytes().hex()) for b in range(bands)]
