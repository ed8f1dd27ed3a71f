"""An identity feature loss (ours, off by default): the face in the predicted clip should embed like the true one's.

At low and middle noise the x0 estimate already holds a face; the diffusion loss charges its error per latent
element, where a blurred eye or a lost freckle is a few hundredths of the total. This term decodes both the x0
estimate and the true latents with the (frozen) VAE, crops the face of one pixel frame per latent frame with the
box the cached face mask gives, embeds both crops with a frozen, differentiable face encoder and charges
1 - cos(embedding of the prediction, embedding of the truth), averaged over the frames:

    x_hat = VAE.decode(x0_hat),  x = VAE.decode(x0)                  (B, 3, F, H, W), x without gradient
    c_f   = crop(x_hat[:, :, p(f)], box_f),  c*_f = crop(x[:, :, p(f)], box_f)   one pixel frame p(f) per latent frame
    L_id  = mean_f (1 - cos(E(c_f), E(c*_f)))                          per clip; rows with t >= max_timestep count 0

The target is the true clip's own face, not the reference photo: a turned or smiling face is compared with the
same turn or smile, so the term asks for this person's features and does not pull every frame towards the
reference's frontal pose (the copy-paste face the paper argues against). It is the ID loss of identity-preserving
image models (PuLID's, which compares with the reference instead) in a form that suits video. Only the toyworld
face backend has a differentiable encoder here; the released backends' ONNX models are not (UserError).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError

CROP_SIZE = 64  # the toyworld encoder's input


def latent_to_pixel_frame(latent_frame: int, latent_frames: int, pixel_frames: int) -> int:
    """The pixel frame the cached latent-grid mask of `latent_frame` is centred on (the trilinear resize that made
    it, align_corners False, samples pixel time (k + 0.5) F / F_lat - 0.5)."""
    position = (latent_frame + 0.5) * pixel_frames / latent_frames - 0.5
    return int(min(max(round(position), 0), pixel_frames - 1))


def face_boxes(face_weight: torch.Tensor, pixels_per_cell: int, margin: float = 1.25,
               min_side: float = 12.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, F, h, w) latent-grid face masks -> square boxes (B, F, 4) as (cx, cy, side, side) in pixels and a (B, F)
    flag of frames that have a face. The square is centred on the mask's bounding box and `margin` times its longer
    side, at least `min_side` pixels. A clip cached without a face mask (weight 1 everywhere) gets the whole frame."""
    present = face_weight > 0
    has_face = present.flatten(2).any(dim=2)
    rows, cols = present.any(dim=3), present.any(dim=2)  # (B, F, h), (B, F, w)

    def bounds(occupied: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.arange(occupied.shape[-1], device=occupied.device).float()
        low = torch.where(occupied, index, torch.full_like(index, float("inf"))).amin(dim=-1)
        high = torch.where(occupied, index, torch.full_like(index, float("-inf"))).amax(dim=-1) + 1
        return low, high

    (y0, y1), (x0, x1) = bounds(rows), bounds(cols)
    cx, cy = (x0 + x1) / 2 * pixels_per_cell, (y0 + y1) / 2 * pixels_per_cell
    side = (torch.maximum(x1 - x0, y1 - y0) * pixels_per_cell * margin).clamp_min(min_side)
    boxes = torch.stack([cx, cy, side, side], dim=-1)
    return torch.where(has_face.unsqueeze(-1), boxes, torch.zeros_like(boxes)), has_face


def crop_squares(frames: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Differentiable bilinear crops: frames (N, C, H, W), boxes (N, 4) as (cx, cy, side, side) in pixels ->
    (N, C, size, size); outside the frame the edge is repeated, as the world's own face crop pads."""
    n, _, height, width = frames.shape
    theta = frames.new_zeros(n, 2, 3)
    # align_corners False: a point u in pixel units (pixel i spans [i, i + 1)) is at 2 u / W - 1, so the output grid
    # g in [-1, 1] maps to u = cx + g side / 2
    theta[:, 0, 0] = boxes[:, 2] / width
    theta[:, 1, 1] = boxes[:, 3] / height
    theta[:, 0, 2] = 2 * boxes[:, 0] / width - 1
    theta[:, 1, 2] = 2 * boxes[:, 1] / height - 1
    grid = F.affine_grid(theta, [n, frames.shape[1], size, size], align_corners=False)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)


class IdentityFeatureLoss:
    """The frozen VAE and face encoder, and the term above. `embed` maps crops in [-1, 1] (N, 3, S, S) to (N, D)."""

    def __init__(self, vae, embed, crop_size: int = CROP_SIZE):
        self.vae, self.embed, self.crop_size = vae, embed, crop_size
        self.pixels_per_cell = 2 ** (len(vae.config.block_out_channels) - 1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, F, C, h, w) video latents -> (B, 3, frames, H, W) in about [-1, 1]. Video latents are cached times the
        scaling factor whatever `invert_scale_latents` says (that flag concerns the image latents only), so they are
        divided by it, as the pipeline decodes."""
        latents = latents.permute(0, 2, 1, 3, 4).to(self.vae.dtype) / self.vae.config.scaling_factor
        return self.vae.decode(latents).sample.float()

    def __call__(self, x0_hat: torch.Tensor, x0: torch.Tensor, face_weight: torch.Tensor) -> torch.Tensor:
        """(B,) mean over the frames with a face of 1 - cos(E(predicted face), E(true face)); 0 for a clip without one."""
        with torch.no_grad():
            truth = self.decode(x0)
        prediction = self.decode(x0_hat)
        batch, latent_frames = face_weight.shape[:2]
        pixel_frames = prediction.shape[2]
        picks = [latent_to_pixel_frame(k, latent_frames, pixel_frames) for k in range(latent_frames)]
        boxes, has_face = face_boxes(face_weight.float(), self.pixels_per_cell)

        def crops(video: torch.Tensor) -> torch.Tensor:  # (B, 3, frames, H, W) -> (B F_lat, 3, S, S)
            frames = video[:, :, picks].transpose(1, 2).flatten(0, 1)
            return crop_squares(frames.clamp(-1, 1), boxes.reshape(-1, 4), self.crop_size)

        with torch.no_grad():
            target = F.normalize(self.embed(crops(truth)), dim=-1)
        predicted = F.normalize(self.embed(crops(prediction)), dim=-1)
        distance = (1 - (predicted * target).sum(dim=-1)).reshape(batch, latent_frames)
        weight = has_face.to(distance.dtype)
        return (distance * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1.0)


def load_identity_feature_loss(model_folder, device: torch.device) -> IdentityFeatureLoss:
    """The term for a model folder: its VAE and its face encoder, which must be differentiable (toyworld's is)."""
    from ..identity.features import IdentitySpec
    from ..pipeline.folder import load_vae

    kind = IdentitySpec.for_model(model_folder.root).kind
    if kind != "toyworld":
        raise UserError(f"loss.identity_weight needs a differentiable face encoder; the model's face backend is "
                        f"'{kind}' (only 'toyworld' has one here); set loss.identity_weight: 0")
    from ..toyworld.identity_encoder import load_encoder

    encoder = load_encoder(model_folder.root / "face_encoder").to(device).requires_grad_(False)
    vae = load_vae(model_folder, torch.float32).to(device).eval().requires_grad_(False)
    return IdentityFeatureLoss(vae, lambda crops: encoder(crops)[0])
