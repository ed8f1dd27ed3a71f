"""AML loss against the release's numbers (shared/golden/aml_loss.safetensors): weights, noise, both branches."""

from __future__ import annotations

import pytest
import torch

from proteus_id.training.loss import per_element_loss, reduce_loss
from proteus_id.training.motion_weight import expand_over_channels, motion_weight_pixels, to_latent_grid


def _scheduler_config(metadata: dict) -> dict:
    def parse(value: str):
        if value in ("True", "False"):
            return value == "True"
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                pass
        return value

    return {k: parse(v) for k, v in metadata.items()}


@pytest.fixture(scope="module")
def case(golden):
    from diffusers import CogVideoXDPMScheduler
    from safetensors import safe_open

    with safe_open(str(golden / "aml_loss.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        scheduler = CogVideoXDPMScheduler(**_scheduler_config(f.metadata()))
    return tensors, scheduler


def test_weights_noise_and_both_loss_branches(case):
    g, scheduler = case
    x0, t = g["x0"], g["timesteps"]
    batch, frames, channels, height, width = x0.shape
    noisy = scheduler.add_noise(x0, g["noise"], t)
    torch.testing.assert_close(noisy, g["expected.noisy_latents"], atol=1e-6, rtol=0)

    motion = motion_weight_pixels(g["flow_magnitude"], g["person_mask"], "released")
    motion = expand_over_channels(to_latent_grid(motion, frames, height, width), channels)
    face = expand_over_channels(to_latent_grid(g["face_mask"], frames, height, width), channels)
    torch.testing.assert_close(motion, g["expected.motion_weight"], atol=1e-6, rtol=0)
    torch.testing.assert_close(face, g["expected.face_weight"], atol=1e-6, rtol=0)
    assert motion.max() > 0.5 and (motion == 0).any()  # the case has moving and still regions

    loss = per_element_loss(scheduler, g["model_output"], noisy, x0, t, motion)
    mean_branch, face_branch = reduce_loss(loss, None), reduce_loss(loss, face)
    assert abs(mean_branch.item() - g["expected.loss_mean"].item()) < 1e-6
    assert abs(face_branch.item() - g["expected.loss_face_masked"].item()) < 1e-6
    # without the motion term the loss is measurably different: the test would catch a dropped AML term
    assert abs(reduce_loss(per_element_loss(scheduler, g["model_output"], noisy, x0, t), None).item() - mean_branch.item()) > 1e-3


def test_clip_normalized_alternative_is_bounded_and_ordered():
    magnitude = torch.zeros(1, 2, 4, 4)
    magnitude[0, :, 0, 0], magnitude[0, :, 1, 1], magnitude[0, :, 3, 3] = 8.0, 2.0, 5.0
    person = torch.zeros(1, 3, 4, 4)
    person[0, :, :2, :2] = 1
    weight = motion_weight_pixels(magnitude, person, "clip_normalized")
    assert weight.max() <= 1 and weight[0, 0, 3, 3] == 0  # off the person
    assert weight[0, 0, 0, 0] > weight[0, 0, 1, 1] > 0  # faster moves weigh more
    released = motion_weight_pixels(magnitude, person, "released")
    assert released[0, 0, 1, 1] > 0.85  # the released sigmoid already saturates at 2 px
    assert motion_weight_pixels(magnitude, person, "none").abs().sum() == 0


def test_face_branch_without_any_face_is_the_mean_not_nan():
    """A batch whose face weight is zero everywhere (no detection, or the face cropped away) must not give 0/0."""
    loss = torch.rand(2, 12, dtype=torch.float64, requires_grad=True)
    value = reduce_loss(loss, torch.zeros(2, 12))
    assert torch.isfinite(value) and torch.allclose(value, loss.mean())
    value.backward()
    assert torch.isfinite(loss.grad).all()
    face = torch.zeros(2, 12)
    face[0, :3] = 1
    assert torch.allclose(reduce_loss(loss, face), loss[0, :3].mean())


def test_weight_cap_clips_only_the_low_noise_weights():
    """weight_cap=None is the release's 1/(1 - alphas_cumprod); a cap clips the large low-noise weights and leaves
    the high-noise ones (including the zero-SNR terminal step, weight 1) as they are."""
    from diffusers import CogVideoXDPMScheduler

    from proteus_id.training.loss import snr_weight

    scheduler = CogVideoXDPMScheduler(rescale_betas_zero_snr=True, prediction_type="v_prediction")
    t = torch.tensor([0, 100, 500, 999])
    release = 1.0 / (1.0 - scheduler.alphas_cumprod[t])
    torch.testing.assert_close(snr_weight(scheduler, t), release)
    capped = snr_weight(scheduler, t, weight_cap=5.0)
    assert release[0] > 100 and capped[0] == 5.0
    assert release[-1].item() == pytest.approx(1.0) and capped[-1].item() == pytest.approx(1.0)
    torch.testing.assert_close(capped, release.clamp(max=5.0))
    noisy, x0 = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    v = torch.randn(4, 3, 2, 2)
    ratio = per_element_loss(scheduler, v, noisy, x0, t, weight_cap=5.0) / per_element_loss(scheduler, v, noisy, x0, t)
    torch.testing.assert_close(ratio, (capped / release).float().unsqueeze(1).expand_as(ratio).to(ratio.dtype))


def test_frame_difference_term_charges_only_errors_that_change_between_frames():
    """frame_difference_weight d adds d * w_t * (e_f - e_{f-1})^2 per element (0 at the first latent frame): an error
    that is the same in every frame costs nothing extra, a still prediction of a moving target pays for each change."""
    from diffusers import CogVideoXDPMScheduler

    from proteus_id.training.loss import snr_weight

    scheduler = CogVideoXDPMScheduler(rescale_betas_zero_snr=True, prediction_type="v_prediction")
    t = torch.tensor([300, 700])
    a = scheduler.alphas_cumprod[t].float().view(2, 1, 1, 1, 1)
    x0, noisy = torch.randn(2, 3, 2, 2, 2), torch.randn(2, 3, 2, 2, 2)

    def velocity_for(x0_hat):  # invert x0_hat = sqrt(a) x_t - sqrt(1 - a) v
        return (a.sqrt() * noisy - x0_hat) / (1 - a).sqrt()

    offset = x0 + torch.randn(2, 1, 2, 2, 2)  # the same error in every frame
    plain = per_element_loss(scheduler, velocity_for(offset), noisy, x0, t)
    torch.testing.assert_close(per_element_loss(scheduler, velocity_for(offset), noisy, x0, t, frame_difference_weight=2.0),
                               plain, atol=1e-4, rtol=1e-4)

    still = x0[:, :1].expand_as(x0)  # a frozen first frame of a clip that moves
    error = still - x0
    w = snr_weight(scheduler, t).float().view(2, 1, 1, 1, 1)
    change = torch.cat([torch.zeros_like(error[:, :1]), error[:, 1:] - error[:, :-1]], dim=1)
    expected = (w * (error**2 + 0.5 * change**2)).reshape(2, -1)
    got = per_element_loss(scheduler, velocity_for(still), noisy, x0, t, frame_difference_weight=0.5)
    torch.testing.assert_close(got.float(), expected, atol=1e-3, rtol=1e-4)
    assert (got.float() > per_element_loss(scheduler, velocity_for(still), noisy, x0, t).float() + 1e-6)[:, 8:].any()


def test_relative_motion_error_charges_a_missed_motion_the_same_whatever_its_size():
    """R = mean((e_f - e_{f-1})^2) / (mean((m_f - m_{f-1})^2) + floor): a still prediction of a moving clip costs about
    1 for a walk-sized and a nod-sized motion alike, a constant error costs 0, a still clip pays its predicted motion
    over the floor."""
    from proteus_id.training.loss import relative_motion_error

    torch.manual_seed(0)
    base = torch.randn(1, 1, 4, 3, 3).expand(2, 5, 4, 3, 3).clone()
    drift = torch.randn(1, 5, 4, 3, 3).cumsum(dim=1)
    x0 = base + torch.cat([drift, 0.01 * drift])  # clip 0 moves 100x more than clip 1 (energy 10^4 x)
    still = x0[:, :1].expand_as(x0)
    missed = relative_motion_error(still, x0, x0, floor=1e-9)
    torch.testing.assert_close(missed, torch.ones(2), atol=1e-4, rtol=0)
    # the frame-difference error it replaces differs by the motion's energy
    absolute = (still - x0).diff(dim=1).pow(2).flatten(1).mean(dim=1)
    assert absolute[0] > 5e3 * absolute[1]
    offset = x0 + torch.randn(2, 1, 4, 3, 3)
    torch.testing.assert_close(relative_motion_error(offset, x0, x0, floor=1e-9), torch.zeros(2), atol=1e-5, rtol=0)
    half = x0[:, :1] + 0.5 * (x0 - x0[:, :1])  # half the motion: a quarter of the energy missed
    torch.testing.assert_close(relative_motion_error(half, x0, x0, floor=1e-9), torch.full((2,), 0.25), atol=1e-4, rtol=0)
    # a still clip (no motion in its mean): the predicted motion's energy over the floor
    frozen = base[:1]
    wobble = frozen + 0.1 * torch.randn(1, 5, 4, 3, 3)
    expected = wobble.diff(dim=1).pow(2).mean() / 0.01
    torch.testing.assert_close(relative_motion_error(wobble, frozen, frozen, floor=0.01), expected.reshape(1))
    # the divisor is the clean mean's motion, not the sampled target's: a still clip's latent sampling noise is an
    # error the model cannot remove, and it must not count as motion in the divisor (it would give 2 / 3 here)
    sampled = frozen + 0.01 * torch.randn(1, 5, 4, 3, 3)
    noise_change = (frozen - sampled).diff(dim=1).pow(2).mean()
    got = relative_motion_error(frozen, sampled, frozen, floor=noise_change.item() / 2)
    torch.testing.assert_close(got, torch.full((1,), 2.0))
