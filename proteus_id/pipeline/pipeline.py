"""ProteusIDPipeline: face features + prompt + identity prompt -> video, as a diffusers DiffusionPipeline.

The denoising loop, top to bottom:

    prompt, negative prompt   -> text encoder -> embeddings + masks           (CFG rows: [negative ; positive])
    identity prompt           -> text encoder -> identity_prompt_embeds
    W_fusion = transformer.encode_identity(identity prompt, id_cond, id_vit_hidden)     once per call (no timestep)
    face crop                 -> VAE posterior sample -> latent frame 0 of the image-condition latent
    noise latents             -> for t: transformer([latents ; image latent], text, W_fusion, id features, t)
                                        -> CFG on the text only -> DPM step
    latents                   -> VAE decode -> frames

Classifier-free guidance is on the text only, as released: both rows get the same fused tokens, TAII tokens and
face latent; only the prompt tokens differ. `identity_guidance_scale` (ours, off by default) adds a third term
pushing away from a prediction without (part of) the identity:
    v = v_uncond + g (v_text - v_uncond) + g_id (v_text - v_text_without_identity)
`identity_guidance_negative` says what that prediction lacks (`options.IDENTITY_GUIDANCE_NEGATIVES`): by default the
face latent, zeroed as training's image dropout zeroes it, so the model has learnt that prediction; "branch" (the
whole face branch off) is a state training never shows.
`guidance_interval=(lo, hi)` (ours, off by default) applies the text guidance only at steps with lo <= t <= hi and
runs the text rows alone elsewhere (Kynkaanniemi et al. 2024, "Applying guidance in a limited interval"): the
layout and the motion are decided at the top of the noise range, the face's details lower down, where guidance
costs identity; outside the interval a step costs half.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import PIL.Image
import torch
from diffusers.image_processor import PipelineImageInput
from diffusers.loaders import CogVideoXLoraLoaderMixin
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import (
    get_resize_crop_region_for_grid,
    retrieve_latents,
    retrieve_timesteps,
)
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.schedulers import CogVideoXDPMScheduler
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor

from ..model.transformer import ProteusIDTransformer3DModel
from . import folder as model_folder
from .options import DEFAULT_IDENTITY_GUIDANCE_NEGATIVE, IDENTITY_GUIDANCE_NEGATIVES
from .text import encode_text

logger = logging.getLogger("proteus_id")


def rescale_guided(v_guided: torch.Tensor, v_text: torch.Tensor, phi: float) -> torch.Tensor:
    """Guidance rescale (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed", eq. 15-16;
    diffusers' `rescale_noise_cfg`): bring each video's guided prediction back to the standard deviation of its
    prompt-only prediction, mixed by `phi`. Large guidance inflates the prediction's spread (over-exposed images in
    the paper); on the toy model it did not calm the frames that strong guidance breaks up (docs/toyworld.md)."""
    dims = list(range(1, v_text.ndim))
    rescaled = v_guided * (v_text.std(dim=dims, keepdim=True) / v_guided.std(dim=dims, keepdim=True))
    return phi * rescaled + (1 - phi) * v_guided


@dataclass
class ProteusIDPipelineOutput(BaseOutput):
    """frames: per video, a list of PIL images, or an array (B, F, H, W, 3) in [0, 1] for output_type="np",
    or latents for output_type="latent"."""

    frames: Any


class OffloadConflictError(RuntimeError):
    """Model offload and sequential offload were both asked for (the release allowed it; it breaks)."""


class ProteusIDPipeline(DiffusionPipeline, CogVideoXLoraLoaderMixin):
    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _optional_components: list[str] = []
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(self, tokenizer, text_encoder, vae, transformer: ProteusIDTransformer3DModel, scheduler: CogVideoXDPMScheduler):
        super().__init__()
        self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler)
        self.vae_scale_factor_spatial = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.vae_scale_factor_temporal = self.vae.config.temporal_compression_ratio
        self.vae_scaling_factor_image = self.vae.config.scaling_factor
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)
        self.face_encoder_dir: str | None = None
        self._offload_mode: str | None = None

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        torch_dtype: torch.dtype | None = None,
        use_ema: bool = False,
        **kwargs: Any,
    ) -> "ProteusIDPipeline":
        """Load a local model folder in the released layout (components found by folder, transformer loaded strictly)."""
        if kwargs:
            raise TypeError(f"unsupported loading options: {', '.join(sorted(kwargs))}")
        folder = model_folder.inspect_model_folder(pretrained_model_name_or_path)
        folder.require_complete()
        pipe = cls(
            tokenizer=model_folder.load_tokenizer(folder),
            text_encoder=model_folder.load_text_encoder(folder, torch_dtype),
            vae=model_folder.load_vae(folder, torch_dtype),
            transformer=model_folder.load_transformer(folder, torch_dtype, use_ema=use_ema),
            scheduler=model_folder.load_scheduler(folder),
        )
        if "face_encoder" in folder.found:
            pipe.face_encoder_dir = str(folder.found["face_encoder"])
        return pipe

    # ------------------------------------------------------------------ memory presets

    def enable_model_cpu_offload(self, gpu_id: int | None = None, device: torch.device | str = None):
        self._refuse_other_offload("model")
        super().enable_model_cpu_offload(gpu_id=gpu_id, device=device)
        self._offload_mode = "model"

    def enable_sequential_cpu_offload(self, gpu_id: int | None = None, device: torch.device | str = None):
        self._refuse_other_offload("sequential")
        super().enable_sequential_cpu_offload(gpu_id=gpu_id, device=device)
        self._offload_mode = "sequential"

    def _refuse_other_offload(self, mode: str) -> None:
        if self._offload_mode not in (None, mode):
            raise OffloadConflictError(
                f"{self._offload_mode} CPU offload is already on; model and sequential offload cannot be combined "
                "(choose one: sequential uses the least memory, model is faster)"
            )

    # ------------------------------------------------------------------ inputs

    def encode_prompts(
        self,
        prompts: list[str],
        max_length: int,
        device: torch.device,
        dtype: torch.dtype | None = None,
        room: int | None = None,
        what: str = "prompt",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_text(self.tokenizer, self.text_encoder, prompts, max_length, device, dtype, room, what)

    def _prediction_without_identity(self, negative: str, latents, image_latents, t, prompt_embeds, prompt_mask, ofs,
                                     rotary, attention_kwargs, id_cond, id_vit_hidden, fused_tokens, fused_without_text):
        """The prompt rows' prediction without the part of the identity `negative` names (identity guidance)."""
        common = dict(encoder_hidden_states=prompt_embeds, encoder_hidden_mask=prompt_mask, timestep=t.expand(latents.shape[0]),
                      ofs=ofs, image_rotary_emb=rotary, attention_kwargs=attention_kwargs, return_dict=False)
        if negative == "branch":
            return self.transformer(hidden_states=torch.cat([latents, image_latents], dim=2), use_identity=False,
                                    **common)[0].float()
        if "face_latent" in negative:
            image_latents = torch.zeros_like(image_latents)
        if fused_without_text is not None:
            fused_tokens = fused_without_text
        return self.transformer(hidden_states=torch.cat([latents, image_latents], dim=2), id_cond=id_cond,
                                id_vit_hidden=id_vit_hidden, is_infer=True, fused_tokens=fused_tokens, **common)[0].float()

    def prepare_image_latents(
        self,
        image: torch.Tensor,
        num_latent_frames: int,
        dtype: torch.dtype,
        generator: torch.Generator | list[torch.Generator] | None,
        kps_image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Face crop(s) (B, 3, H, W) in [-1, 1] -> image-condition latent (B, F_lat, C, h, w): frame 0 the face
        (frame 1 the keypoint drawing when given), zeros elsewhere. One VAE posterior draw per video, in order."""

        def encode(pixels: torch.Tensor) -> torch.Tensor:
            draws = []
            for i, img in enumerate(pixels):
                gen = generator[i] if isinstance(generator, list) else generator
                draws.append(retrieve_latents(self.vae.encode(img[None, :, None]), gen))
            latents = torch.cat(draws).to(dtype).permute(0, 2, 1, 3, 4)
            if self.vae.config.invert_scale_latents:
                return latents / self.vae_scaling_factor_image
            return latents * self.vae_scaling_factor_image

        frames = [encode(image)]
        if kps_image is not None:
            frames.append(encode(kps_image))
        head = torch.cat(frames, dim=1)
        padding = head.new_zeros(head.shape[0], num_latent_frames - head.shape[1], *head.shape[2:])
        image_latents = torch.cat([head, padding], dim=1)
        p_t = self.transformer.config.patch_size_t
        if p_t is not None:  # CogVideoX 1.5: pad the frame count to a multiple of patch_size_t with the first frames
            image_latents = torch.cat([image_latents[:, : image_latents.shape[1] % p_t], image_latents], dim=1)
        return image_latents

    def rotary_embeddings(self, height: int, width: int, num_latent_frames: int, device: torch.device):
        cfg = self.transformer.config
        if not cfg.use_rotary_positional_embeddings:
            return None
        grid_h = height // (self.vae_scale_factor_spatial * cfg.patch_size)
        grid_w = width // (self.vae_scale_factor_spatial * cfg.patch_size)
        # the grid the positions are measured on: a model with halved patches reads 0, 0.5, 1, ... (see rope_patch_size)
        unit = getattr(cfg, "rope_patch_size", None) or cfg.patch_size
        base_w, base_h = cfg.sample_width // unit, cfg.sample_height // unit
        if cfg.patch_size_t is None:
            crops = get_resize_crop_region_for_grid((grid_h, grid_w), base_w, base_h)
            return get_3d_rotary_pos_embed(
                embed_dim=cfg.attention_head_dim, crops_coords=crops, grid_size=(grid_h, grid_w),
                temporal_size=num_latent_frames, device=device,
            )
        return get_3d_rotary_pos_embed(
            embed_dim=cfg.attention_head_dim, crops_coords=None, grid_size=(grid_h, grid_w),
            temporal_size=(num_latent_frames + cfg.patch_size_t - 1) // cfg.patch_size_t, grid_type="slice",
            max_size=(base_h, base_w), device=device,
        )

    def check_inputs(self, height: int, width: int, num_frames: int, num_inference_steps: int, guidance_scale: float,
                     guidance_interval: tuple[float, float] | None = None) -> None:
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size
        if height % multiple or width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}, got {height}x{width}")
        patch_t = self.transformer.config.patch_size_t
        error = frame_count_error(num_frames, self.vae_scale_factor_temporal, patch_t, even_latents=True)
        if error:
            raise ValueError(error)
        warning = frame_count_error(num_frames, self.vae_scale_factor_temporal, patch_t)
        if warning:  # the release runs these too; its video then has 4n frames. Same numbers here, with a warning.
            logger.warning("%s; the video will have %d frames, as the released code gives", warning,
                           4 * ((num_frames - 1) // self.vae_scale_factor_temporal + 1))
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
        if guidance_interval is not None:
            check_guidance_interval(guidance_interval)

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def __call__(
        self,
        image: PipelineImageInput,
        prompt: str | list[str] | None = None,
        identity_prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        guidance_scale: float = 6.0,
        use_dynamic_cfg: bool = False,
        guidance_interval: tuple[float, float] | None = None,
        guidance_rescale: float = 0.0,
        identity_guidance_scale: float = 0.0,
        identity_guidance_negative: str = DEFAULT_IDENTITY_GUIDANCE_NEGATIVE,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        seed: int | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_embeds_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds_mask: torch.Tensor | None = None,
        identity_prompt_embeds: torch.Tensor | None = None,
        id_cond: torch.Tensor | None = None,
        id_vit_hidden: list[torch.Tensor] | None = None,
        kps_cond: np.ndarray | list | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (diffusers' convention)
        max_sequence_length: int | None = None,
        max_identity_length: int = 32,
    ) -> ProteusIDPipelineOutput | tuple:
        """Generate videos. `image` is the aligned face crop (what the face front end returns), one for all prompts
        or one per prompt; `id_cond` (B_id, 1, clip) and `id_vit_hidden` (list of (B_id, N, vit)) its features.
        `seed` is a shortcut for `generator=torch.Generator().manual_seed(seed)`; 0 is a seed like any other."""
        cfg = self.transformer.config
        height = height or cfg.sample_height * self.vae_scale_factor_spatial
        width = width or cfg.sample_width * self.vae_scale_factor_spatial
        num_frames = num_frames or cfg.sample_frames
        max_sequence_length = max_sequence_length or cfg.max_text_seq_length
        self.check_inputs(height, width, num_frames, num_inference_steps, guidance_scale, guidance_interval)
        if not 0.0 <= guidance_rescale <= 1.0:
            raise ValueError(f"guidance_rescale must be in [0, 1], got {guidance_rescale}")
        if id_cond is None or id_vit_hidden is None:
            raise ValueError("id_cond and id_vit_hidden are required: run the face front end (proteus_id.identity) first")
        if callback_on_step_end_tensor_inputs and not set(callback_on_step_end_tensor_inputs) <= set(self._callback_tensor_inputs):
            raise ValueError(f"callback tensors must be among {self._callback_tensor_inputs}")
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)

        device = self._execution_device
        self._guidance_scale = guidance_scale
        self._num_timesteps = 0
        do_cfg = guidance_scale > 1.0
        use_id_guidance = identity_guidance_scale > 0.0
        if identity_guidance_negative not in IDENTITY_GUIDANCE_NEGATIVES:
            raise ValueError(f"identity_guidance_negative must be one of {', '.join(IDENTITY_GUIDANCE_NEGATIVES)}, "
                             f"got {identity_guidance_negative!r}")

        # 1. prompts -> embeddings (+ masks); batch = prompts x videos per prompt
        room = max_sequence_length - cfg.FT_num_querie
        if prompt_embeds is None:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt or [])
            if not prompts or any(not p or not p.strip() for p in prompts):
                raise ValueError("prompt must be a non-empty string (or a list of them)")
            prompt_embeds, prompt_embeds_mask = self.encode_prompts(prompts, max_sequence_length, device, room=room)
        elif prompt_embeds_mask is None:
            prompt_embeds_mask = torch.ones(prompt_embeds.shape[:2], dtype=torch.long, device=device)
        num_prompts = prompt_embeds.shape[0]
        dtype = prompt_embeds.dtype
        if do_cfg and negative_prompt_embeds is None:
            negatives = negative_prompt or ""
            negatives = [negatives] * num_prompts if isinstance(negatives, str) else list(negatives)
            if len(negatives) != num_prompts:
                raise ValueError(f"{len(negatives)} negative prompts for {num_prompts} prompts")
            negative_prompt_embeds, negative_prompt_embeds_mask = self.encode_prompts(
                negatives, max_sequence_length, device, dtype, room=room, what="negative prompt"
            )
        elif do_cfg and negative_prompt_embeds_mask is None:
            negative_prompt_embeds_mask = torch.ones(negative_prompt_embeds.shape[:2], dtype=torch.long, device=device)
        if identity_prompt_embeds is None:
            identities = [identity_prompt] if isinstance(identity_prompt, str) else list(identity_prompt or [])
            if not identities or any(not p or not p.strip() for p in identities):
                raise ValueError("identity_prompt must be a non-empty string (or one per prompt)")
            identity_prompt_embeds, _ = self.encode_prompts(identities, max_identity_length, device, dtype, what="identity prompt")

        per_video = lambda x: x.repeat_interleave(num_videos_per_prompt, dim=0)  # noqa: E731
        prompt_embeds, prompt_embeds_mask = per_video(prompt_embeds), per_video(prompt_embeds_mask)
        batch = prompt_embeds.shape[0]
        text, text_mask = prompt_embeds, prompt_embeds_mask
        if do_cfg:
            text = torch.cat([per_video(negative_prompt_embeds), prompt_embeds])
            text_mask = torch.cat([per_video(negative_prompt_embeds_mask), prompt_embeds_mask])

        # 2. identity: one row serves every video, or one row per prompt
        id_cond = id_cond.to(device, dtype)
        id_vit_hidden = [h.to(device, dtype) for h in id_vit_hidden]
        identity_prompt_embeds = identity_prompt_embeds.to(device, dtype)
        num_ids = id_cond.shape[0]
        if num_ids not in (1, num_prompts) or identity_prompt_embeds.shape[0] not in (1, num_ids, num_prompts):
            raise ValueError(f"give one identity for all prompts or one per prompt ({num_prompts}); got {num_ids}")
        if identity_prompt_embeds.shape[0] != num_ids:  # one identity prompt per prompt, one face
            id_cond = id_cond.expand(identity_prompt_embeds.shape[0], -1, -1)
            id_vit_hidden = [h.expand(identity_prompt_embeds.shape[0], -1, -1) for h in id_vit_hidden]
        elif identity_prompt_embeds.shape[0] == 1 and num_ids > 1:
            identity_prompt_embeds = identity_prompt_embeds.expand(num_ids, -1, -1)
        if id_cond.shape[0] > 1:
            id_cond, id_vit_hidden = per_video(id_cond), [per_video(h) for h in id_vit_hidden]
            identity_prompt_embeds = per_video(identity_prompt_embeds)
        fused_tokens = self.transformer.encode_identity(identity_prompt_embeds, id_cond, id_vit_hidden)
        fused_without_text = None  # the negative of identity guidance against the empty identity prompt
        if use_id_guidance and "identity_prompt" in identity_guidance_negative:
            null_identity, _ = self.encode_prompts([""], max_identity_length, device, dtype, what="identity prompt")
            fused_without_text = self.transformer.encode_identity(
                null_identity.expand_as(identity_prompt_embeds), id_cond, id_vit_hidden)
        if do_cfg and fused_tokens.shape[0] > 1:  # rows [negative ; positive] share the identity
            id_cond, fused_tokens = id_cond.repeat(2, 1, 1), fused_tokens.repeat(2, 1, 1)
            id_vit_hidden = [h.repeat(2, 1, 1) for h in id_vit_hidden]

        # 3. timesteps, latents, image-condition latent
        timesteps, num_inference_steps = retrieve_timesteps(self.scheduler, num_inference_steps, device, timesteps)
        self._num_timesteps = len(timesteps)
        num_latent_frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        pixels = self.video_processor.preprocess(image, height=height, width=width).to(device, dtype)
        if pixels.shape[0] == num_prompts and num_prompts > 1:
            pixels = per_video(pixels)
        elif pixels.shape[0] == 1:
            pixels = pixels.expand(batch, -1, -1, -1)
        else:
            raise ValueError(f"give one face image for all prompts or one per prompt ({num_prompts}); got {pixels.shape[0]}")
        kps_pixels = None
        if cfg.is_kps and kps_cond is not None:
            kps_pixels = self.video_processor.preprocess(draw_keypoints(_as_pil(image), kps_cond), height=height, width=width)
            kps_pixels = kps_pixels.to(device, dtype).expand(batch, -1, -1, -1)
        image_latents = self.prepare_image_latents(pixels, num_latent_frames, dtype, generator, kps_pixels)

        shape = (batch, image_latents.shape[1], cfg.in_channels // 2,
                 height // self.vae_scale_factor_spatial, width // self.vae_scale_factor_spatial)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = latents.to(device) * self.scheduler.init_noise_sigma
        rotary = self.rotary_embeddings(height, width, latents.shape[1], device)
        ofs = latents.new_full((1,), 2.0) if cfg.ofs_embed_dim else None
        step_kwargs = {"eta": eta, "generator": generator}
        image_input = torch.cat([image_latents] * 2) if do_cfg else image_latents

        def text_rows(x: torch.Tensor) -> torch.Tensor:
            """The text (positive) rows of a CFG-doubled input; inputs shared by every row (one row) stay."""
            return x[batch:] if x.shape[0] == 2 * batch else x

        # 4. denoising loop
        old_pred_original_sample = None
        with self.progress_bar(total=num_inference_steps) as progress:
            for i, t in enumerate(timesteps):
                guided = do_cfg and (guidance_interval is None or guidance_interval[0] <= t.item() <= guidance_interval[1])
                rows = text_rows if do_cfg and not guided else (lambda x: x)  # unguided step: the prompt rows only
                model_input = torch.cat([latents] * 2) if guided else latents
                model_input = torch.cat([self.scheduler.scale_model_input(model_input, t), rows(image_input)], dim=2)
                v = self.transformer(
                    hidden_states=model_input,
                    encoder_hidden_states=rows(text),
                    encoder_hidden_mask=rows(text_mask),
                    timestep=t.expand(model_input.shape[0]),
                    ofs=ofs,
                    image_rotary_emb=rotary,
                    attention_kwargs=attention_kwargs,
                    id_cond=rows(id_cond),
                    id_vit_hidden=[rows(h) for h in id_vit_hidden],
                    is_infer=True,
                    return_dict=False,
                    fused_tokens=rows(fused_tokens),
                )[0].float()
                if use_dynamic_cfg:  # the release's (and CogVideoX's) formula, in the timestep value
                    self._guidance_scale = 1 + guidance_scale * (
                        (1 - math.cos(math.pi * ((num_inference_steps - t.item()) / num_inference_steps) ** 5.0)) / 2
                    )
                if guided:
                    v_uncond, v_text = v.chunk(2)
                    v = v_uncond + self._guidance_scale * (v_text - v_uncond)
                    if guidance_rescale > 0:
                        v = rescale_guided(v, v_text, guidance_rescale)
                    v_cond = v_text
                else:
                    v_cond = v
                if use_id_guidance:
                    v_without_id = self._prediction_without_identity(
                        identity_guidance_negative, self.scheduler.scale_model_input(latents, t), image_latents, t,
                        prompt_embeds, prompt_embeds_mask, ofs, rotary, attention_kwargs,
                        text_rows(id_cond), [text_rows(h) for h in id_vit_hidden], text_rows(fused_tokens),
                        fused_without_text)
                    v = v + identity_guidance_scale * (v_cond - v_without_id)

                if isinstance(self.scheduler, CogVideoXDPMScheduler):
                    latents, old_pred_original_sample = self.scheduler.step(
                        v, old_pred_original_sample, t, timesteps[i - 1] if i > 0 else None, latents,
                        **step_kwargs, return_dict=False,
                    )
                else:
                    latents = self.scheduler.step(v, t, latents, return_dict=False)[0]
                latents = latents.to(dtype)

                if callback_on_step_end is not None:
                    available = {"latents": latents, "prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_prompt_embeds}
                    outputs = callback_on_step_end(self, i, t, {k: available[k] for k in callback_on_step_end_tensor_inputs}) or {}
                    latents = outputs.pop("latents", latents)
                progress.update()

        # 5. decode
        if output_type == "latent":
            video = latents
        else:
            if cfg.patch_size_t is not None:
                latents = latents[:, latents.shape[1] - num_latent_frames :]
            frames = self.vae.decode((latents.permute(0, 2, 1, 3, 4) / self.vae_scaling_factor_image)).sample
            video = self.video_processor.postprocess_video(video=frames, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video,)
        return ProteusIDPipelineOutput(frames=video)


def check_guidance_interval(interval) -> tuple[float, float]:
    """(lo, hi) in timesteps with 0 <= lo <= hi, or ValueError."""
    try:
        lo, hi = (float(x) for x in interval)
    except (TypeError, ValueError):
        raise ValueError(f"guidance_interval must be two timesteps (lo, hi), got {interval!r}") from None
    if not 0 <= lo <= hi:
        raise ValueError(f"guidance_interval must have 0 <= lo <= hi, got ({lo:g}, {hi:g})")
    return lo, hi


def frame_count_error(num_frames: int, temporal_ratio: int = 4, patch_size_t: int | None = None,
                      even_latents: bool = False) -> str | None:
    """Why `num_frames` cannot be generated as asked, or None.

    CogVideoX compresses time 4x with the first frame kept: 4k+1 frames -> k+1 latent frames. The 1.0 VAE (the
    released model's) decodes only an odd number of latent frames to 4(n-1)+1 frames; an even n comes back as 4n
    frames. So without temporal patching the counts that come back as asked are 8k+1 (9, 17, 25, 33, 41, 49).
    `even_latents=True` accepts the other 4k+1 counts (the pipeline runs them, as the release does, and warns); the
    CLI refuses them up front."""
    if num_frames < 1 or (num_frames - 1) % temporal_ratio:
        step = temporal_ratio if patch_size_t else 2 * temporal_ratio
        return f"num_frames must be {step}k+1 (e.g. 49), got {num_frames}"
    latent = (num_frames - 1) // temporal_ratio + 1
    if patch_size_t is None and latent % 2 == 0 and not even_latents:
        return (f"num_frames {num_frames} gives an even number of latent frames ({latent}), which the CogVideoX VAE "
                f"decodes to the wrong length; use {num_frames - temporal_ratio} or {num_frames + temporal_ratio} (8k+1)")
    return None


def _as_pil(image) -> PIL.Image.Image:
    if isinstance(image, list):
        image = image[0]
    if isinstance(image, PIL.Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).astype(np.uint8)
    return PIL.Image.fromarray(array)


def draw_keypoints(image: PIL.Image.Image, keypoints) -> PIL.Image.Image:
    """The 5 facial keypoints drawn as coloured limbs to the nose and dots on black (the release's `draw_kps` layout,
    drawn with PIL instead of OpenCV, so pixels can differ slightly; only `is_kps` models use it)."""
    from PIL import ImageDraw

    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]
    kps = np.asarray(keypoints, dtype=np.float32).reshape(-1, 2)
    canvas = PIL.Image.new("RGB", image.size)
    draw = ImageDraw.Draw(canvas)
    for a, b in ((0, 2), (1, 2), (3, 2), (4, 2)):
        colour = tuple(int(c * 0.6) for c in colours[a])
        draw.line([tuple(kps[a]), tuple(kps[b])], fill=colour, width=8)
    for (x, y), colour in zip(kps, colours):
        draw.ellipse([x - 10, y - 10, x + 10, y + 10], fill=colour)
    return canvas
