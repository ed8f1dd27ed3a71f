"""The identity feature term (training/identity_loss.py): boxes from the cached face mask, differentiable crops, and
1 - cos between the embeddings of the predicted and the true face, wired into the spec's loss."""

from __future__ import annotations

import pytest
import torch

from proteus_id.errors import UserError
from proteus_id.training.config import ConfigError, load_config
from proteus_id.training.identity_loss import (IdentityFeatureLoss, crop_squares, face_boxes,
                                               latent_to_pixel_frame)
from training_helpers import write_config


def test_each_latent_frame_is_read_at_the_pixel_frame_its_mask_was_resized_from():
    # 17 frames -> 5 latent frames (CogVideoX's 4x temporal compression): trilinear centres at 3.4 k + 1.2
    assert [latent_to_pixel_frame(k, 5, 17) for k in range(5)] == [1, 5, 8, 11, 15]
    assert [latent_to_pixel_frame(k, 3, 9) for k in range(3)] == [1, 4, 7]


def test_face_boxes_are_squares_around_the_mask_and_flag_frames_without_a_face():
    mask = torch.zeros(1, 2, 8, 8)
    mask[0, 0, 2:5, 3:5] = 0.5  # rows 2-4, columns 3-4: 3 x 2 cells, any weight above 0 counts
    boxes, has_face = face_boxes(mask, pixels_per_cell=4, margin=1.0, min_side=1.0)
    assert has_face.tolist() == [[True, False]]
    # x: cells 3..5 -> pixels 12..20, centre 16; y: cells 2..5 -> pixels 8..20, centre 14; side: the longer, 12 px
    assert boxes[0, 0].tolist() == [16.0, 14.0, 12.0, 12.0]
    assert boxes[0, 1].tolist() == [0.0, 0.0, 0.0, 0.0]
    wide, _ = face_boxes(mask, pixels_per_cell=4, margin=1.25, min_side=20.0)
    assert wide[0, 0, 2].item() == 20.0  # 15 px with the margin, raised to the minimum side


def test_a_crop_aligned_with_the_pixel_grid_is_the_slice_and_outside_repeats_the_edge():
    frames = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    boxes = torch.tensor([[16.0, 12.0, 16.0, 16.0], [4.0, 4.0, 16.0, 16.0]])  # the second reaches 4 px past the corner
    crops = crop_squares(frames, boxes, size=16)
    torch.testing.assert_close(crops[0], frames[0, :, 4:20, 8:24])
    torch.testing.assert_close(crops[1, :, 4:, 4:], frames[1, :, :12, :12])
    torch.testing.assert_close(crops[1, :, :4, 4:], frames[1, :, :1, :12].expand(3, 4, 12))  # rows above: row 0


class _TinyVae(torch.nn.Module):
    """Stands in for the VAE: (B, C, F, h, w) latents -> (B, 3, F, 4h, 4w) pixels, differentiable."""

    def __init__(self):
        super().__init__()
        self.config = type("Config", (), {"scaling_factor": 2.0, "block_out_channels": [4, 4, 4],
                                          "invert_scale_latents": True})()
        self.proj = torch.nn.Conv3d(4, 3, 1)

    @property
    def dtype(self):
        return torch.float32

    def decode(self, z):
        pixels = torch.nn.functional.interpolate(self.proj(z), scale_factor=(1, 4, 4))
        return type("Decoded", (), {"sample": torch.tanh(pixels)})()


def _term(seed: int = 0) -> IdentityFeatureLoss:
    torch.manual_seed(seed)
    embed = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.SiLU(), torch.nn.Flatten(),
                                torch.nn.LazyLinear(16))
    embed(torch.zeros(1, 3, 32, 32))
    return IdentityFeatureLoss(_TinyVae().requires_grad_(False), embed.requires_grad_(False), crop_size=32)


def test_video_latents_are_decoded_divided_by_the_scaling_factor_as_the_pipeline_does():
    term = _term()
    latents = torch.randn(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(4))  # (B, F, C, h, w)
    # invert_scale_latents (set on the stand-in) applies to image latents only; video latents are cached times the factor
    torch.testing.assert_close(term.decode(latents), term.vae.decode(latents.permute(0, 2, 1, 3, 4) / 2.0).sample)


def test_the_term_is_zero_for_the_true_clip_positive_otherwise_and_its_gradient_reaches_the_prediction():
    term = _term()
    generator = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 3, 4, 8, 8, generator=generator)
    face = torch.zeros(2, 3, 8, 8)
    face[:, :, 2:6, 2:6] = 1.0
    face[1, 2] = 0.0  # the second clip's last frame has no face: it is left out of that clip's mean
    torch.testing.assert_close(term(x0, x0, face), torch.zeros(2), atol=1e-6, rtol=0)
    x0_hat = (x0 + 0.5 * torch.randn(x0.shape, generator=generator)).requires_grad_(True)
    distance = term(x0_hat, x0, face)
    assert (distance > 0).all() and (distance <= 2).all()
    distance.sum().backward()
    assert x0_hat.grad.abs().sum() > 0
    # only the face's neighbourhood matters: changing the clip far outside every box leaves the term as it was
    moved = x0_hat.detach().clone()
    moved[..., 7, 7] += 3.0
    torch.testing.assert_close(term(moved, x0, face), distance.detach())
    assert term(x0_hat.detach(), x0, torch.zeros_like(face)).tolist() == [0.0, 0.0]  # no face at all: 0


def test_the_spec_adds_the_weighted_term_over_the_rows_below_the_timestep_limit(training_data, monkeypatch):
    from proteus_id.training import identity_loss
    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.data import CacheDataset, Collate
    from proteus_id.training.spec import ProteusIDSpec

    model_dir, _, cache_dir = training_data
    monkeypatch.setattr(identity_loss, "load_identity_feature_loss", lambda folder, device: _term())
    config = TrainConfig(model=str(model_dir), output_dir="unused")
    config.data.cache = str(cache_dir)
    config.loss.identity_weight, config.loss.identity_max_timestep = 0.5, 500
    config.loss.face_mask_probability = 0.0
    spec = ProteusIDSpec(config, torch.device("cpu"))
    cache = FeatureCache(cache_dir)
    batch = Collate(cache.settings["max_text_length"], cache.null_text())([CacheDataset(cache)[i] for i in (0, 1, 2)])
    x0 = spec.latents(batch, torch.Generator().manual_seed(0))
    timesteps = torch.tensor([100, 499, 500])  # the last row is at the limit: it counts 0
    noisy = spec.scheduler.add_noise(x0, torch.randn(x0.shape, generator=torch.Generator().manual_seed(1)), timesteps)
    prediction = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))

    loss, info = spec.loss(batch, prediction, noisy, x0, timesteps, torch.Generator().manual_seed(3))
    config.loss.identity_weight = 0.0
    plain, plain_info = spec.loss(batch, prediction, noisy, x0, timesteps, torch.Generator().manual_seed(3))
    x0_hat = spec.scheduler.get_velocity(prediction, noisy, timesteps)
    rows = _term()(x0_hat[:2], x0[:2], batch["face_weight"][:2].float())
    assert "identity" not in plain_info and info["identity"] > 0
    torch.testing.assert_close(info["identity"], rows.sum() / 3)
    torch.testing.assert_close(loss, plain + 0.5 * rows.sum() / 3)


def test_the_term_needs_a_differentiable_face_encoder_and_a_sane_config(training_data, tmp_path):
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.spec import ProteusIDSpec

    model_dir, _, cache_dir = training_data
    config = TrainConfig(model=str(model_dir), output_dir="unused")
    config.loss.identity_weight = 0.1
    with pytest.raises(UserError, match="differentiable face encoder"):  # at start, not at the first step
        ProteusIDSpec(config, torch.device("cpu"))
    for key, value, message in (("identity_weight", -0.1, ">= 0"), ("identity_max_timestep", 0, "> 0")):
        path = write_config(tmp_path / f"{key}.yaml", model=str(model_dir), output_dir=str(tmp_path / "run"),
                            data={"cache": str(cache_dir)}, loss={key: value})
        with pytest.raises(ConfigError, match=message):
            load_config(path)
