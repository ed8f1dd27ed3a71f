"""CLIPScore: how well the frames match the prompt.

clipscore = mean over the sampled frames (16) of 100 * cos(CLIP_image(frame), CLIP_text(prompt)), with CLIP
ViT-B/32 through transformers from a local folder (`clip`, e.g. a saved openai/clip-vit-base-patch32). This is
ConsisID's number (their logits_per_image = logit_scale * cosine with logit_scale = 100), without their slip of
feeding OpenCV's BGR frames as RGB. Not clipped at 0 (Hessel et al.'s 2.5 * max(cos, 0) is a different scale).
The prompt is truncated to CLIP's 77 tokens, so only the start of a long Proteus-ID prompt counts.
Preprocessing: the folder's CLIP image processor (resize 224 on the short side, centre crop, CLIP mean/std).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Metric, MetricUnavailable, NotApplicable, file_identity


class ClipScore(Metric):
    name = "clipscore"
    group = "text"
    columns = ("clipscore",)
    higher_is_better = {"clipscore": True}
    description = "mean over sampled frames of 100 x cosine(CLIP image, CLIP text of the prompt)"

    def __init__(self, folder: Path, device: str = "cpu"):
        import torch
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise MetricUnavailable(f"{folder} is not a transformers CLIP folder (no config.json)")
        self.model = CLIPModel.from_pretrained(str(folder), local_files_only=True).eval().to(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
        self.max_length = min(int(self.model.config.text_config.max_position_embeddings), 77)
        self.folder, self.device, self._torch = folder, device, torch
        self._text_cache: dict[str, np.ndarray] = {}

    def text_embedding(self, prompt: str) -> np.ndarray:
        if prompt not in self._text_cache:
            torch = self._torch
            tokens = self.tokenizer([prompt], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            with torch.no_grad():
                out = self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
            self._text_cache[prompt] = _features(out)[0]
            if len(self._text_cache) > 2048:
                self._text_cache.pop(next(iter(self._text_cache)))
        return self._text_cache[prompt]

    def image_embeddings(self, frames: np.ndarray) -> np.ndarray:
        torch = self._torch
        pixels = self.processor(images=list(frames), return_tensors="pt")["pixel_values"].to(self.device)
        with torch.no_grad():
            return _features(self.model.get_image_features(pixel_values=pixels))

    def compute(self, video, row):
        if not row.prompt:
            raise NotApplicable("no prompt in the manifest row")
        text = self.text_embedding(row.prompt)
        images = self.image_embeddings(video.sampled_frames)
        cos = images @ text / (np.linalg.norm(images, axis=1) * np.linalg.norm(text))
        return {"clipscore": float(100.0 * cos.mean())}

    def fingerprint(self) -> str:
        return f"{self.name}:{file_identity(self.folder)}"

    def describe(self):
        return {"description": self.description, "weights": str(self.folder)}


def _features(out) -> np.ndarray:
    """get_*_features returns a tensor (transformers 4) or an output object with pooler_output (5.x)."""
    tensor = out if hasattr(out, "cpu") else getattr(out, "pooler_output", None)
    if tensor is None:
        tensor = out[0]
    return tensor.float().cpu().numpy()


def clipscore_factory(config):
    if config.clip is None:
        raise MetricUnavailable("no CLIP folder given (--clip DIR holding a saved clip-vit-base-patch32)")
    return ClipScore(config.clip, config.device)
