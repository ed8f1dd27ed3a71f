"""Validation videos during training: the pipeline run on cached items (their face crop, features and prompts), so
neither the text encoder nor the face models are loaded by the trainer. Videos and a contact sheet (first, middle and
last frame of each video) go to <output_dir>/validation/step-N/; the sheet is also logged to TensorBoard."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

logger = logging.getLogger("proteus_id")


class Validator:
    def __init__(self, config, cache, device: torch.device):
        self.config, self.cache, self.device = config, cache, device
        wanted = config.validation.items or [item.id for item in cache.items[: config.validation.num_items]]
        ids = {item.id: i for i, item in enumerate(cache.items)}
        unknown = [w for w in wanted if w not in ids]
        if unknown:
            from ..errors import UserError

            raise UserError(f"config key 'validation.items': {unknown[0]!r} is not in the cache {cache.root}")
        self.indices = [ids[w] for w in wanted]
        self._vae = None

    @property
    def enabled(self) -> bool:
        return bool(self.indices)

    def _pipeline(self, transformer, scheduler):
        from ..pipeline import folder as model_folder
        from ..pipeline.pipeline import ProteusIDPipeline

        if self._vae is None:
            self._vae = model_folder.load_vae(model_folder.inspect_model_folder(self.config.model), None).to(self.device)
        return ProteusIDPipeline(tokenizer=None, text_encoder=None, vae=self._vae, transformer=transformer, scheduler=scheduler)

    @torch.no_grad()
    def run(self, transformer, scheduler, step: int, out_dir: Path, tracker=None) -> list[Path]:
        from ..pipeline.video import write_video

        settings, v = self.cache.settings, self.config.validation
        pipe = self._pipeline(transformer, scheduler)
        pipe.set_progress_bar_config(disable=True)
        null = self.cache.null_text()
        target = out_dir / f"step-{step:07d}"
        target.mkdir(parents=True, exist_ok=True)
        was_training = transformer.training
        transformer.eval()
        paths, sheets = [], []
        for index in self.indices:
            item = self.cache.load(index)
            item_id = self.cache.items[index].id
            prompt, mask = _padded(item["prompt_embeds"], settings["max_text_length"])
            negative, negative_mask = _padded(null["prompt_embeds"], settings["max_text_length"])
            dtype = torch.float32
            frames = pipe(
                image=Image.fromarray(item["face_crop"].numpy()),
                prompt_embeds=prompt.to(self.device, dtype), prompt_embeds_mask=mask.to(self.device),
                negative_prompt_embeds=negative.to(self.device, dtype), negative_prompt_embeds_mask=negative_mask.to(self.device),
                identity_prompt_embeds=item["identity_prompt_embeds"][None].to(self.device, dtype),
                id_cond=item["id_cond"].reshape(1, 1, -1).to(self.device, dtype),
                id_vit_hidden=[item[f"id_vit_hidden.{k}"][None].to(self.device, dtype) for k in range(_num_vit(item))],
                height=settings["height"], width=settings["width"], num_frames=settings["num_frames"],
                num_inference_steps=v.num_inference_steps, guidance_scale=v.guidance_scale, seed=v.seed, output_type="np",
            ).frames[0]
            paths.append(write_video(frames, target / f"{item_id}.mp4", fps=8))
            picks = [0, len(frames) // 2, len(frames) - 1]
            sheets.append(np.concatenate([(frames[i] * 255).round().astype(np.uint8) for i in picks], axis=1))
        sheet = np.concatenate(sheets, axis=0)
        Image.fromarray(sheet).save(target / "contact_sheet.png")
        if tracker is not None:
            tracker.writer.add_image("validation/contact_sheet", sheet, step, dataformats="HWC")
        if was_training:
            transformer.train()
        logger.info("validation step %d: %d video(s) in %s", step, len(paths), target)
        return paths


def _num_vit(item: dict) -> int:
    return len([k for k in item if k.startswith("id_vit_hidden.")])


def _padded(embeds: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = min(embeds.shape[0], length)
    out = embeds.new_zeros(1, length, embeds.shape[1])
    out[0, :n] = embeds[:n]
    mask = torch.zeros(1, length, dtype=torch.long)
    mask[0, :n] = 1
    return out, mask
