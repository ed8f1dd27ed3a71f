"""The precomputed feature cache: safetensors shards + `index.json`, written by `proteus-id precompute`.

    <cache>/settings.json            what the cache was made with (size, frames, model fingerprint, modes); fixed
    <cache>/null_text.safetensors    embeddings of the empty prompt / identity prompt (for prompt dropout and CFG)
    <cache>/shard-RR-NNNNN.safetensors   items; tensor keys "<item id>/<name>"; metadata "items": JSON list of
                                     {"id", "meta"}; written to a temporary name, then renamed (atomic)
    <cache>/index.json               every item: id, shard, meta; plus the last run's summary (rebuilt from the shards)

Per item (shapes for F_lat latent frames, C latent channels, h x w latent grid, D text width):
    latents_mean, latents_std (F_lat, C, h, w)  VAE posterior of the clip, already times the scaling factor
                                                 (latents_std absent when the cache stores the mean only)
    image_latents_mean, image_latents_std (1, C, h, w)  the face crop's posterior (latent frame 0 of the condition)
    prompt_embeds (n, D)                         the n valid caption tokens (padding is dropped by the model anyway)
    identity_prompt_embeds (L_id, D)             all L_id tokens (MIF reads the padded ones too)
    id_cond (1, C_id), id_vit_hidden.K (N, V)    the face backend's features of the reference
    face_crop (Hc, Wc, 3) uint8                  the backend's aligned crop (validation videos, inspection)
    motion_weight, face_weight (F_lat, h, w)     AML weight and face mask on the latent grid (float32)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_path, write_text_atomic
from ..errors import UserError

CACHE_FORMAT = "proteus-id-feature-cache"
CACHE_VERSION = 1
SHARD_PATTERN = re.compile(r"^shard-(\d+)-(\d+)\.safetensors$")


class CacheError(UserError):
    """A cache folder that is missing, incomplete or made with other settings."""


def write_json_atomic(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def save_tensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def shard_items(path: Path) -> list[dict]:
    """The item list stored in a shard's metadata (no tensor is read)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return json.loads((f.metadata() or {}).get("items", "[]"))


def list_shards(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if SHARD_PATTERN.match(p.name))


class ShardWriter:
    """Buffers items and writes them `shard_size` at a time as `shard-<rank>-<n>.safetensors` (atomic)."""

    def __init__(self, root: Path, rank: int, shard_size: int):
        self.root, self.rank, self.shard_size = root, rank, max(1, shard_size)
        taken = [int(m.group(2)) for p in list_shards(root) if (m := SHARD_PATTERN.match(p.name)) and int(m.group(1)) == rank]
        self.next_number = max(taken, default=-1) + 1
        self.tensors: dict[str, torch.Tensor] = {}
        self.items: list[dict] = []

    def add(self, item_id: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        for name, value in tensors.items():
            self.tensors[f"{item_id}/{name}"] = value.detach().cpu()
        self.items.append({"id": item_id, "meta": meta})
        if len(self.items) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        path = self.root / f"shard-{self.rank:02d}-{self.next_number:05d}.safetensors"
        save_tensors_atomic(path, self.tensors, {"items": json.dumps(self.items)})
        self.next_number += 1
        self.tensors, self.items = {}, []


def build_index(root: Path, settings: dict, summary: dict | None = None) -> dict:
    """Scan every shard and write index.json (the shards are the truth; the index is a table of contents)."""
    items, seen = [], set()
    for shard in list_shards(root):
        for entry in shard_items(shard):
            if entry["id"] in seen:  # the same item in two shards (two runs raced): keep the first
                continue
            seen.add(entry["id"])
            items.append({"id": entry["id"], "shard": shard.name, "meta": entry.get("meta", {})})
    index = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "settings": settings, "items": items, "summary": summary or {}}
    write_json_atomic(root / "index.json", index)
    return index


@dataclass
class CacheItem:
    id: str
    shard: str
    meta: dict


class FeatureCache:
    """Read access to a finished cache: `cache[i]` -> dict of tensors of item i (id in "id")."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        index_path = self.root / "index.json"
        if not index_path.is_file():
            hint = " (precompute did not finish: rerun it, finished items are kept)" if self.root.is_dir() else ""
            raise CacheError(f"feature cache {self.root} has no index.json{hint}")
        index = json.loads(index_path.read_text())
        if index.get("format") != CACHE_FORMAT or index.get("version") != CACHE_VERSION:
            raise CacheError(f"{index_path} is not a version-{CACHE_VERSION} proteus-id feature cache")
        self.settings: dict = index["settings"]
        self.summary: dict = index.get("summary", {})
        self.items = [CacheItem(**entry) for entry in index["items"]]
        self._handles: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _handle(self, shard: str):
        from safetensors import safe_open

        if shard not in self._handles:
            if len(self._handles) > 8:
                self._handles.clear()
            self._handles[shard] = safe_open(str(self.root / shard), "pt")
        return self._handles[shard]

    def load(self, index: int) -> dict[str, torch.Tensor]:
        item = self.items[index]
        handle = self._handle(item.shard)
        prefix = f"{item.id}/"
        return {k[len(prefix):]: handle.get_tensor(k) for k in handle.keys() if k.startswith(prefix)}

    def null_text(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(str(self.root / "null_text.safetensors"))

    def __getstate__(self):  # DataLoader workers reopen the shards themselves
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state
