"""The Proteus-ID training loss (the release's, checked against shared/golden/aml_loss.safetensors).

    x0_hat = scheduler.get_velocity(v_pred, x_t, t)          v-prediction turned into x0: sqrt(a) x_t - sqrt(1-a) v
    l      = (x0_hat - x0)^2 / (1 - alphas_cumprod[t])       per element, flattened per sample
             (weight_cap c, ours, off by default: min(1 / (1 - alphas_cumprod[t]), c))
    (frame_difference_weight d, ours, off by default: l = l + d w_t (e_f - e_{f-1})^2, e = x0_hat - x0, zero at f = 0)
    l      = l + M * l                                        AML motion weight (M = 0 without AML)
    loss   = sum(l * F) / sum(F)   with probability p_face   face-mask averaging (F: face mask on the latent grid)
           = mean(l)               otherwise
    (relative_motion_weight r, ours, off by default: loss = loss + r mean_b R_b, see relative_motion_error)
    (identity_weight w, ours, off by default: loss = loss + w L_id, a face encoder's distance; identity_loss.py)

alphas_cumprod is float64 in diffusers' CogVideoX DPM scheduler, so the weighted loss is float64 as in the release.

Why a cap: the release's weight is SNR + 1, about 1,200 at t = 0 and 1 at t = 999, so with uniform timesteps the
low-noise steps (fine detail) dominate the gradient and the high-noise steps, where layout and motion are decided
from the text, get little of it. Capping the weight (as min-SNR weighting does, but keeping the weight of the
zero-SNR terminal step, which min(SNR, c) would set to 0) moves emphasis to those steps.

Why a frame-difference term: an error that is the same in every latent frame (a wrong colour, a lost detail) and one
that changes from frame to frame (a missed nod) cost the same per element, and in a small video the second is a few
elements. Adding the squared change of the error between consecutive latent frames up-weights what moves: a
prediction with the right motion and a constant offset pays nothing extra, a still prediction of a moving target pays
for every frame-to-frame change it misses. It is a fixed positive quadratic form, so the optimum (the conditional mean)
does not move; only where the gradient goes does.

Why a relative motion term: the frame-difference term still charges a missed motion by its size, and on the toy
world a walk changes the latent 25-100 times more than a nod or a head turn, so the gradient it adds goes to the
walks. Dividing each clip's frame-difference error by the clip's own motion energy (the mean squared frame-to-frame
change of its latent mean, plus a floor so still clips do not divide by zero) makes a missed nod cost what a missed
walk costs: a still prediction of any moving clip pays about r. The per-clip divisor depends only on the target, so
the term is again a positive quadratic form in the prediction; its optimum is the motion-energy-weighted conditional
mean (within one prompt, slow clips weigh a little more than fast ones). It carries no SNR weight: it is a ratio
already, and the place it is meant for is the middle and top of the noise range, where the prompt decides motion.

Why a motion contrast term: the terms above still look at one clip at a time, where a face-level motion is a few
hundredths of the error. Sampling with guidance against the prompt's mirrored motion (docs/toyworld.md) amplifies the
*difference* between the model's predictions for two captions that differ only in their motion, a difference the
loss never asks for directly. Given a clip a and its motion partner b (the same person, clothes, place, light and
noise; only the motion and that phrase of the caption differ), both noised with the same noise at the same t, the term
is ||e_a - e_b||^2 / (||m_a - m_b||^2 + floor) per pair (means over elements; e = x0_hat - x0, m the clips' latent
means): what is shared (identity, clothes, background) cancels in e_a - e_b, and what is left is the error in the
motion difference, divided by that difference's own size, so a smile against a still face counts as much as a walk
against its mirror. Unlike the terms above it couples two predictions made from two inputs, so its optimum is not
exactly the conditional mean of either: it is a regulariser that asks the two captions' predictions to differ the way
the two clips do. No SNR weight, as for the relative motion term.
"""

from __future__ import annotations

import torch


def x0_prediction(scheduler, model_output: torch.Tensor, noisy_latents: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """v-prediction -> x0 estimate (diffusers' get_velocity applied to (v, x_t) gives sqrt(a) x_t - sqrt(1-a) v)."""
    return scheduler.get_velocity(model_output, noisy_latents, timesteps)


def snr_weight(scheduler, timesteps: torch.Tensor, weight_cap: float | None = None) -> torch.Tensor:
    """1 / (1 - alphas_cumprod[t]) per sample (= SNR + 1), capped at weight_cap when given."""
    alphas_cumprod = scheduler.alphas_cumprod.to(timesteps.device)[timesteps]
    weights = 1.0 / (1.0 - alphas_cumprod)
    return weights if weight_cap is None else weights.clamp(max=weight_cap)


def per_element_loss(
    scheduler,
    model_output: torch.Tensor,
    noisy_latents: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    motion_weight: torch.Tensor | None = None,
    weight_cap: float | None = None,
    frame_difference_weight: float = 0.0,
) -> torch.Tensor:
    """(B, N) weighted squared x0 error with the AML term; motion_weight (B, N) or None for plain loss;
    weight_cap None and frame_difference_weight 0 for the release's loss. Latents are (B, F, C, h, w)."""
    prediction = x0_prediction(scheduler, model_output, noisy_latents, timesteps)
    weights = snr_weight(scheduler, timesteps, weight_cap)
    while weights.ndim < prediction.ndim:
        weights = weights.unsqueeze(-1)
    error = prediction - target
    squared = error**2
    if frame_difference_weight:
        change = error[:, 1:] - error[:, :-1]
        squared = squared + frame_difference_weight * torch.cat([torch.zeros_like(error[:, :1]), change**2], dim=1)
    loss = (weights * squared).reshape(target.shape[0], -1)
    if motion_weight is not None:
        loss = loss + motion_weight.to(loss.device) * loss
    return loss


def relative_motion_error(x0_hat: torch.Tensor, x0: torch.Tensor, clean_mean: torch.Tensor, floor: float) -> torch.Tensor:
    """(B,) mean((e_f - e_{f-1})^2) / (mean((m_f - m_{f-1})^2) + floor) per sample, e = x0_hat - x0, m the clip's
    latent mean (the motion it really has, without the latent sampling noise); latents are (B, F, C, h, w)."""
    error = x0_hat - x0
    missed = (error[:, 1:] - error[:, :-1]).pow(2).flatten(1).mean(dim=1)
    energy = (clean_mean[:, 1:] - clean_mean[:, :-1]).pow(2).flatten(1).mean(dim=1)
    return missed / (energy.to(missed.dtype) + floor)


def motion_contrast_error(x0_hat_a: torch.Tensor, x0_a: torch.Tensor, x0_hat_b: torch.Tensor, x0_b: torch.Tensor,
                          mean_a: torch.Tensor, mean_b: torch.Tensor, floor: float) -> torch.Tensor:
    """(B,) mean((e_a - e_b)^2) / (mean((m_a - m_b)^2) + floor) per pair, e = x0_hat - x0, m the clips' latent means
    (how much the two clips really differ, without the latent sampling noise); latents are (B, F, C, h, w)."""
    missed = ((x0_hat_a - x0_a) - (x0_hat_b - x0_b)).pow(2).flatten(1).mean(dim=1)
    difference = (mean_a - mean_b).pow(2).flatten(1).mean(dim=1)
    return missed / (difference.to(missed.dtype) + floor)


def reduce_loss(loss: torch.Tensor, face_weight: torch.Tensor | None) -> torch.Tensor:
    """Face-masked average over the batch (sum(l F) / sum(F)) when face_weight is given, else mean per sample, then mean.

    A batch whose face weight is zero everywhere (no face detected in any frame, or the face cropped away) takes the
    plain mean instead of 0/0 = NaN, which would poison the weights."""
    mean = loss.mean(dim=1).mean()
    if face_weight is None:
        return mean
    face_weight = face_weight.to(loss.device, loss.dtype)
    total = face_weight.sum()
    masked = (loss * face_weight).sum() / total.clamp_min(torch.finfo(loss.dtype).tiny)
    return torch.where(total > 0, masked, mean)
