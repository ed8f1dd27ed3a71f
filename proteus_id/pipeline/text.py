"""Prompt encoding shared by the pipeline and the training cache, so both see the very same embeddings.

As in the release, the text encoder runs on the padded ids without an attention mask; the mask is returned so the
transformer can keep the valid tokens only.
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger("proteus_id")


def encode_text(
    tokenizer,
    text_encoder,
    texts: list[str],
    max_length: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    room: int | None = None,
    what: str = "prompt",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts -> (embeddings (B, max_length, D), mask (B, max_length) with 1 on real tokens).

    Texts longer than `max_length` tokens are truncated with a warning that quotes the dropped words; `room` (the
    number of prompt tokens the transformer keeps after the fused identity tokens) gets the same treatment.
    """
    inputs = tokenizer(
        texts, padding="max_length", max_length=max_length, truncation=True, add_special_tokens=True, return_tensors="pt"
    )
    _warn_truncation(tokenizer, texts, inputs.attention_mask, max_length, room, what)
    embeds = text_encoder(inputs.input_ids.to(device))[0]
    return embeds.to(device=device, dtype=dtype or embeds.dtype), inputs.attention_mask.to(device)


def _warn_truncation(tokenizer, texts: list[str], mask: torch.Tensor, max_length: int, room: int | None, what: str) -> None:
    for text, row_mask in zip(texts, mask):
        full = tokenizer(text, add_special_tokens=True, truncation=False).input_ids
        if len(full) > max_length:
            dropped = tokenizer.decode(full[max_length - 1 : -1], skip_special_tokens=True)
            logger.warning("%s is %d tokens; the text encoder keeps %d. Dropped: \"%s\"", what, len(full), max_length, dropped)
        valid = int(row_mask.sum())
        if room is not None and valid > room:
            kept_ids = [i for i, m in zip(tokenizer(text, padding="max_length", max_length=max_length, truncation=True).input_ids, row_mask) if m]
            dropped = tokenizer.decode(kept_ids[room:], skip_special_tokens=True)
            logger.warning(
                "%s has %d tokens but the transformer keeps %d after its identity tokens. Dropped: \"%s\"", what, valid, room, dropped
            )
