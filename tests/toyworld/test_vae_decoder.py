"""The decoder-only VAE fine-tune: the encoder (the latent space every cache and transformer depends on) stays
bit-identical, the decoder trains, noisy-latent training runs, and a rerun resumes from the checkpoint."""

from __future__ import annotations

import json

import torch

from proteus_id.toyworld.vae import DecoderTuneConfig, build_vae, finetune_decoder


def _state(vae, prefix: str) -> dict:
    return {k: v.clone() for k, v in vae.state_dict().items() if k.startswith(prefix)}


def test_decoder_tune_keeps_the_encoder_trains_the_decoder_and_resumes(tmp_path):
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(0)
    base = build_vae()
    base.save_pretrained(tmp_path / "base")
    cfg = DecoderTuneConfig(phases=(("clips64", 2, 1, 9),), latent_noise=0.2, checkpoint_every=1, log_every=1, eval_clips=2)
    finetune_decoder(tmp_path / "tuned", tmp_path / "base", cfg, progress=False)

    tuned = AutoencoderKLCogVideoX.from_pretrained(tmp_path / "tuned" / "vae")
    for prefix in ("encoder.", "quant_conv"):
        before, after = _state(base, prefix), _state(tuned, prefix)
        assert all(torch.equal(before[k], after[k]) for k in before), f"{prefix} changed"
    before, after = _state(base, "decoder."), _state(tuned, "decoder.")
    assert any(not torch.equal(before[k], after[k]) for k in before), "the decoder did not train"
    metrics = json.loads((tmp_path / "tuned" / "vae_metrics.json").read_text())
    assert metrics["eval_identities"]["clips"] == 2 and metrics["eval_identities"]["clip_psnr_db"] > 0

    # the same folder with a longer schedule continues from step 2 instead of starting over
    longer = DecoderTuneConfig(phases=(("clips64", 3, 1, 9),), latent_noise=0.2, checkpoint_every=1, log_every=1, eval_clips=2)
    finetune_decoder(tmp_path / "tuned", tmp_path / "base", longer, progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "tuned" / "decoder_losses.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
