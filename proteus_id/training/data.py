"""Batches from the feature cache: a dataset that reports unreadable items instead of hiding them, a collate that
pads prompts back to the model's length, and a resumable, rank-aware batch order.

Order: epoch e is a permutation of the items drawn from (seed, e), padded by wrapping to a whole number of batches
for every process; process r takes batches r, r + N, r + 2N, ... . Resuming at (epoch, batch) rebuilds the same
permutation and starts at that batch, without reading the skipped items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .cache import FeatureCache


@dataclass
class BadItem:
    id: str
    reason: str


REQUIRED = ("latents_mean", "image_latents_mean", "prompt_embeds", "identity_prompt_embeds", "id_cond", "motion_weight",
            "face_weight")
# what a clip's motion partner contributes (everything else, the reference and identity text, is the clip's own)
PARTNER_KEYS = ("latents_mean", "latents_std", "prompt_embeds", "motion_weight", "face_weight")


class CacheDataset(torch.utils.data.Dataset):
    """Items of a feature cache; with `partners` (a cache of motion partners under the same ids) each item also
    carries its partner's PARTNER_KEYS as "partner.<key>" and "has_partner". An item without a partner (a still
    clip) is its own partner, with has_partner False, so batches keep one shape and the pair term skips it."""

    def __init__(self, cache: FeatureCache, partners: FeatureCache | None = None):
        self.cache = cache
        self.partners = partners
        self.partner_index = {item.id: i for i, item in enumerate(partners.items)} if partners is not None else {}

    def __len__(self) -> int:
        return len(self.cache)

    @staticmethod
    def _load(cache: FeatureCache, index: int, item_id: str, what: str):
        from safetensors import SafetensorError

        try:
            tensors = cache.load(index)
        except (OSError, ValueError, RuntimeError, SafetensorError) as err:  # missing/truncated shard: count it, never resample
            return BadItem(item_id, f"{what}{err.__class__.__name__}: {err}")
        missing = [k for k in REQUIRED if k not in tensors]
        if missing:
            return BadItem(item_id, f"{what}cache item lacks {', '.join(missing)}")
        return tensors

    def __getitem__(self, index: int):
        item = self.cache.items[index]
        tensors = self._load(self.cache, index, item.id, "")
        if isinstance(tensors, BadItem) or self.partners is None:
            return tensors if isinstance(tensors, BadItem) else {**tensors, "id": item.id}
        partner_index = self.partner_index.get(item.id)
        partner = tensors if partner_index is None else self._load(self.partners, partner_index, item.id, "partner: ")
        if isinstance(partner, BadItem):  # an unreadable partner makes the pair unusable: counted like any bad item
            return partner
        tensors.update({f"partner.{key}": partner[key] for key in PARTNER_KEYS if key in partner})
        return {**tensors, "has_partner": torch.tensor(partner_index is not None), "id": item.id}


class Collate:
    """Stack items; prompt embeddings (n valid tokens each) are zero-padded to `max_text_length` with a mask."""

    def __init__(self, max_text_length: int, null_text: dict[str, torch.Tensor]):
        self.max_text_length = max_text_length
        null_prompt = null_text["prompt_embeds"]
        self.null_prompt, self.null_mask = self._pad(null_prompt)
        self.null_identity = null_text["identity_prompt_embeds"]

    def _pad(self, embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = min(embeds.shape[0], self.max_text_length)
        out = embeds.new_zeros(self.max_text_length, embeds.shape[1])
        out[:n] = embeds[:n]
        mask = torch.zeros(self.max_text_length, dtype=torch.long)
        mask[:n] = 1
        return out, mask

    def __call__(self, items: list) -> dict:
        good = [i for i in items if not isinstance(i, BadItem)]
        batch: dict = {"ids": [i["id"] for i in good], "bad": [i for i in items if isinstance(i, BadItem)]}
        if not good:
            return batch
        padded = [self._pad(i["prompt_embeds"]) for i in good]
        batch["prompt_embeds"] = torch.stack([p for p, _ in padded])
        batch["prompt_mask"] = torch.stack([m for _, m in padded])
        num_vit = len([k for k in good[0] if k.startswith("id_vit_hidden.")])
        batch["id_vit_hidden"] = [torch.stack([i[f"id_vit_hidden.{k}"] for i in good]) for k in range(num_vit)]
        for key in ("latents_mean", "latents_std", "image_latents_mean", "image_latents_std", "identity_prompt_embeds",
                    "id_cond", "motion_weight", "face_weight"):
            if key in good[0]:
                batch[key] = torch.stack([i[key] for i in good])
        batch["id_cond"] = batch["id_cond"].reshape(len(good), 1, -1)
        if "partner.prompt_embeds" in good[0]:
            padded = [self._pad(i["partner.prompt_embeds"]) for i in good]
            batch["partner.prompt_embeds"] = torch.stack([p for p, _ in padded])
            batch["partner.prompt_mask"] = torch.stack([m for _, m in padded])
            stacked = [f"partner.{key}" for key in PARTNER_KEYS if key != "prompt_embeds"] + ["has_partner"]
            for name in stacked:
                if name in good[0]:
                    batch[name] = torch.stack([i[name] for i in good])
        batch["face_crops"] = [i["face_crop"] for i in good]  # sizes may differ per item: a list
        batch["null_prompt_embeds"], batch["null_prompt_mask"] = self.null_prompt[None], self.null_mask[None]
        batch["null_identity_prompt_embeds"] = self.null_identity[None]
        return batch


class EpochBatches(torch.utils.data.Sampler):
    """The batches of one epoch for one process, from batch `start` on (see the module docstring)."""

    def __init__(self, size: int, batch_size: int, rank: int, world: int, seed: int, epoch: int, start: int = 0, shuffle: bool = True):
        self.size, self.batch_size, self.rank, self.world = size, batch_size, rank, world
        self.seed, self.epoch, self.start, self.shuffle = seed, epoch, start, shuffle

    @staticmethod
    def batches_per_epoch(size: int, batch_size: int, world: int) -> int:
        return max(1, math.ceil(size / (batch_size * world)))

    def _order(self) -> list[int]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100003 + self.epoch)).tolist()
        else:
            order = list(range(self.size))
        need = self.batches_per_epoch(self.size, self.batch_size, self.world) * self.batch_size * self.world
        return (order * math.ceil(need / self.size))[:need]

    def __iter__(self):
        order = self._order()
        per_batch = self.batch_size
        total = len(order) // (per_batch * self.world)
        for b in range(self.start, total):
            first = (b * self.world + self.rank) * per_batch
            yield order[first : first + per_batch]

    def __len__(self) -> int:
        return self.batches_per_epoch(self.size, self.batch_size, self.world) - self.start


def to_device(batch: dict, device: torch.device) -> dict:
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device)
        elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
            out[key] = [v.to(device) for v in value]
        else:
            out[key] = value
    return out
