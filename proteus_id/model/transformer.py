"""ProteusIDTransformer3DModel: the CogVideoX DiT of diffusers plus MIF, TAII and the identity cross-attentions.

Data flow of one forward pass (B video rows, B_id identity rows, B_id = 1 or B):

    W_fusion  = Adapter(MIF(identity_prompt_embeds, id_cond, id_vit_hidden))        timestep-free
    text      = [W_fusion ; valid prompt tokens ; zeros]                            replaces the prompt stream
    W_tfusion = TAII(W_fusion, id_cond, id_vit_hidden, t)                           per timestep
    h, text   = CogVideoX patch embedding, then the blocks; after block i with i % cross_attn_interval == 0:
                h = h + local_face_scale * CrossAttn(q = h, kv = W_tfusion)        video tokens only
    out       = CogVideoX output head (unchanged)

The class *is* diffusers' CogVideoXTransformer3DModel (patch embedding, time embedding, blocks, head and their
parameter names are inherited), so a released checkpoint's CogVideoX tensors load into the same modules.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel
from diffusers.utils import apply_lora_scale
from torch import nn

from .attention import PerceiverCrossAttention
from .fusion import FusedTokenAdapter, MultimodalIdentityFusion
from .time_injection import TimeAwareIdentityInjection

TimestepLike = int | float | torch.Tensor


class ProteusIDTransformer3DModel(CogVideoXTransformer3DModel):
    """CogVideoX DiT + MIF (`fuse_token_former`, `fuse_token_adapter`) + TAII (`fuse_facital_attention`) + the
    injection cross-attentions (`perceiver_cross_attention`). Every size comes from the config, whose keys are the
    release's: `FT_*` (MIF), `FFE_*` (TAII), `cross_attn_*`, the CogVideoX keys. `LFE_*` (ConsisID's unused local
    extractor) and the release's `is_train_face` / `is_fuse_token*` switches are accepted and kept in the config so
    that checkpoints we save load in the release's code; the modules they would toggle always exist here.
    """

    _no_split_modules = ["CogVideoXBlock", "CogVideoXPatchEmbed", "PerceiverCrossAttention"]

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 48,
        attention_head_dim: int = 64,
        in_channels: int = 32,
        out_channels: int | None = 16,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        time_embed_dim: int = 512,
        ofs_embed_dim: int | None = None,
        text_embed_dim: int = 4096,
        num_layers: int = 42,
        dropout: float = 0.0,
        attention_bias: bool = True,
        sample_width: int = 90,
        sample_height: int = 60,
        sample_frames: int = 49,
        patch_size: int = 2,
        patch_size_t: int | None = None,
        temporal_compression_ratio: int = 4,
        max_text_seq_length: int = 226,
        activation_fn: str = "gelu-approximate",
        timestep_activation_fn: str = "silu",
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        spatial_interpolation_scale: float = 1.875,
        temporal_interpolation_scale: float = 1.0,
        use_rotary_positional_embeddings: bool = True,
        use_learned_positional_embeddings: bool = True,
        patch_bias: bool = True,
        # --- identity injection into the DiT
        is_kps: bool = False,
        cross_attn_interval: int = 2,
        cross_attn_dim_head: int = 128,
        cross_attn_num_heads: int = 16,
        local_face_scale: float = 1.0,
        # --- MIF (the release's "fuse token" Q-Former)
        FT_txt_dim: int = 4096,
        FT_clip_dim: int = 1280,
        FT_vit_dim: int = 1024,
        FT_num_querie: int = 32,
        FT_depth: int = 10,
        FT_dim_head: int = 64,
        FT_num_heads: int = 64,
        FT_output_dim: int = 4096,
        FT_num_scale: int = 5,
        FT_ff_mult: int = 4,
        # --- TAII (the release's "fuse facial extractor")
        FFE_num_queries: int = 32,
        FFE_query_dim: int = 2048,
        FFE_input_img_dim: int = 2048,
        FFE_input_fuse_dim: int = 4096,
        FFE_output_dim: int = 2048,
        FFE_layers: int = 10,
        FFE_heads: int = 32,
        FFE_clip_dim: int = 1280,
        FFE_vit_dim: int = 1024,
        FFE_time_channel: int = 3072,
        FFE_time_embed_dim: int = 2048,
        FFE_timestep_activation_fn: str = "silu",
        # --- accepted for compatibility, unused (ConsisID's local facial extractor and the release's switches)
        LFE_id_dim: int = 1280,
        LFE_vit_dim: int = 1024,
        LFE_depth: int = 10,
        LFE_dim_head: int = 64,
        LFE_num_heads: int = 16,
        LFE_num_id_token: int = 5,
        LFE_num_querie: int = 32,
        LFE_output_dim: int = 2048,
        LFE_ff_mult: int = 4,
        LFE_num_scale: int = 5,
        is_train_face: bool = True,
        is_fuse_token: bool = True,
        is_fuse_token_v2: bool = True,
        # --- ablation switches (ours; the defaults are the released model)
        use_mif: bool = True,
        mif_identity_text: bool = True,
        taii_time_aware: bool = True,
        # --- ours: RoPE positions counted in patches of this size (None: patch_size). A model whose patches were
        # halved after training (`proteus_id.model.patch_surgery`) keeps reading positions on its old grid.
        rope_patch_size: int | None = None,
    ):
        if rope_patch_size is not None and (rope_patch_size < patch_size or rope_patch_size % patch_size):
            raise ValueError(f"rope_patch_size ({rope_patch_size}) must be a multiple of patch_size ({patch_size})")
        if rope_patch_size not in (None, patch_size) and patch_size_t is not None:
            raise ValueError("rope_patch_size applies to CogVideoX 1.0 positions only (patch_size_t unset)")
        if not (is_train_face and is_fuse_token and is_fuse_token_v2):
            raise ValueError(
                "this config switches off MIF/TAII (is_train_face / is_fuse_token / is_fuse_token_v2 false): it is not a "
                "Proteus-ID transformer; use diffusers' CogVideoXTransformer3DModel or ConsisIDTransformer3DModel for it"
            )
        if cross_attn_interval < 1 or num_layers % cross_attn_interval != 0:
            raise ValueError(
                f"num_layers ({num_layers}) must be a multiple of cross_attn_interval ({cross_attn_interval}): the "
                "release injects after every interval-th block and owns num_layers // interval cross-attentions"
            )
        if FT_output_dim != text_embed_dim or FFE_input_fuse_dim != FT_output_dim:
            raise ValueError(
                f"the fused tokens replace text tokens, so FT_output_dim ({FT_output_dim}) must equal text_embed_dim "
                f"({text_embed_dim}) and FFE_input_fuse_dim ({FFE_input_fuse_dim})"
            )
        kv_dim = int(num_attention_heads * attention_head_dim / 3 * 2)
        if FFE_output_dim != kv_dim:
            raise ValueError(
                f"FFE_output_dim ({FFE_output_dim}) must equal 2/3 of the DiT width ({kv_dim}): the release sizes the "
                "injection cross-attention's key/value input that way"
            )
        super().__init__(
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift,
            time_embed_dim=time_embed_dim,
            ofs_embed_dim=ofs_embed_dim,
            text_embed_dim=text_embed_dim,
            num_layers=num_layers,
            dropout=dropout,
            attention_bias=attention_bias,
            sample_width=sample_width,
            sample_height=sample_height,
            sample_frames=sample_frames,
            patch_size=patch_size,
            patch_size_t=patch_size_t,
            temporal_compression_ratio=temporal_compression_ratio,
            max_text_seq_length=max_text_seq_length,
            activation_fn=activation_fn,
            timestep_activation_fn=timestep_activation_fn,
            norm_elementwise_affine=norm_elementwise_affine,
            norm_eps=norm_eps,
            spatial_interpolation_scale=spatial_interpolation_scale,
            temporal_interpolation_scale=temporal_interpolation_scale,
            use_rotary_positional_embeddings=use_rotary_positional_embeddings,
            use_learned_positional_embeddings=use_learned_positional_embeddings,
            patch_bias=patch_bias,
        )
        inner_dim = num_attention_heads * attention_head_dim
        # use_mif=False (ablation: a ConsisID-like model) builds no MIF at all, so its checkpoint has no MIF tensors
        self.fuse_token_former = self.fuse_token_adapter = None
        if use_mif:
            self.fuse_token_former = MultimodalIdentityFusion(
                text_dim=FT_txt_dim,
                clip_dim=FT_clip_dim,
                vit_dim=FT_vit_dim,
                num_queries=FT_num_querie,
                depth=FT_depth,
                dim_head=FT_dim_head,
                heads=FT_num_heads,
                output_dim=FT_output_dim,
                num_scale=FT_num_scale,
                ff_mult=FT_ff_mult,
            )
            self.fuse_token_adapter = FusedTokenAdapter(FT_output_dim, FT_output_dim, FT_output_dim)
        self.fuse_facital_attention = TimeAwareIdentityInjection(
            num_queries=FFE_num_queries,
            query_dim=FFE_query_dim,
            input_img_dim=FFE_input_img_dim,
            input_fuse_dim=FFE_input_fuse_dim,
            output_dim=FFE_output_dim,
            layers=FFE_layers,
            heads=FFE_heads,
            clip_dim=FFE_clip_dim,
            vit_dim=FFE_vit_dim,
            time_channel=FFE_time_channel,
            time_embed_dim=FFE_time_embed_dim,
            timestep_activation_fn=FFE_timestep_activation_fn,
        )
        # The release sizes the key/value input as 2/3 of the DiT width (2048 for 3072), not from FFE_output_dim.
        self.perceiver_cross_attention = nn.ModuleList(
            PerceiverCrossAttention(
                dim=inner_dim, dim_head=cross_attn_dim_head, heads=cross_attn_num_heads, kv_dim=int(inner_dim / 3 * 2)
            )
            for _ in range(num_layers // cross_attn_interval)
        )

    # ------------------------------------------------------------------ identity paths (each usable on its own)

    def encode_identity(
        self, identity_prompt_embeds: torch.Tensor, id_cond: torch.Tensor, id_vit_hidden: list[torch.Tensor]
    ) -> torch.Tensor:
        """MIF + adapter: W_fusion (B_id, Q, D_txt). Independent of the timestep: compute once per video.

        Without MIF (use_mif=False) there are no fused tokens: returns an empty (B_id, 0, D_txt) tensor."""
        if self.fuse_token_former is None:
            return id_cond.new_zeros(id_cond.shape[0], 0, self.config.text_embed_dim)
        dtype = self.fuse_token_adapter.feature_mapping[0].weight.dtype
        id_vit_hidden = [h.to(dtype) for h in id_vit_hidden]
        prompt = identity_prompt_embeds.to(dtype) if self.config.mif_identity_text else None
        return self.fuse_token_adapter(self.fuse_token_former(prompt, id_cond.to(dtype), id_vit_hidden))

    @staticmethod
    def build_text_stream(
        encoder_hidden_states: torch.Tensor, encoder_hidden_mask: torch.Tensor | None, fused_tokens: torch.Tensor
    ) -> torch.Tensor:
        """[fused tokens ; the valid (mask == 1) prompt tokens in order, at most L - Q ; zeros], shape (B, L, D).

        Vectorised: one boolean selection picks every kept prompt token of the batch (row-major, so in order) and
        one boolean assignment places them; no per-sample loop and a single host sync instead of one per sample.
        """
        batch, length, dim = encoder_hidden_states.shape
        num_fused = fused_tokens.shape[1]
        if encoder_hidden_mask is None:
            valid = torch.ones(batch, length, dtype=torch.bool, device=encoder_hidden_states.device)
        else:
            valid = encoder_hidden_mask.to(encoder_hidden_states.device) == 1
        room = length - num_fused
        source = valid & (valid.cumsum(dim=1) <= room)  # the first `room` valid tokens of each row
        slots = torch.arange(room, device=valid.device)[None] < source.sum(dim=1, keepdim=True)
        stream = encoder_hidden_states.new_zeros(batch, length, dim)
        stream[:, :num_fused] = fused_tokens.to(encoder_hidden_states.dtype)
        stream[:, num_fused:][slots] = encoder_hidden_states[source]
        return stream

    def time_aware_tokens(
        self,
        fused_tokens: torch.Tensor,
        id_cond: torch.Tensor,
        id_vit_hidden: list[torch.Tensor],
        timesteps: torch.Tensor,
    ) -> torch.Tensor:
        """TAII: W_tfusion (max(B_id, B_t), Q, FFE_output_dim) for integer timesteps (B_t,).

        Ablations: without MIF the resampler's fused-token input is zeros; without time awareness it always sees t=0.
        """
        dtype = fused_tokens.dtype
        if fused_tokens.shape[1] == 0:
            fused_tokens = fused_tokens.new_zeros(fused_tokens.shape[0], 1, self.config.FFE_input_fuse_dim)
        if not self.config.taii_time_aware:
            timesteps = torch.zeros_like(timesteps)
        return self.fuse_facital_attention(
            fused_tokens, id_cond.to(dtype), [h.to(dtype) for h in id_vit_hidden], timesteps
        )

    # ------------------------------------------------------------------ forward

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_mask: torch.Tensor | None = None,
        identity_prompt_embeds: torch.Tensor | None = None,
        timestep: TimestepLike | None = None,
        timestep_cond: torch.Tensor | None = None,
        ofs: TimestepLike | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        id_cond: torch.Tensor | None = None,
        id_vit_hidden: list[torch.Tensor] | None = None,
        return_dict: bool = True,
        is_infer: bool = False,
        *,
        fused_tokens: torch.Tensor | None = None,
        use_identity: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """The release's signature (same names, same positional order) plus two keyword-only extras.

        hidden_states (B, F, C_in, H, W) with the image-condition channels concatenated; encoder_hidden_states (B, L, D)
        with encoder_hidden_mask (B, L) (1 = valid token); identity_prompt_embeds (B_id, L_id, D); id_cond
        (B_id, 1, clip); id_vit_hidden FT_num_scale tensors (B_id, N, vit). `is_infer=True` (the release's CFG call)
        makes TAII use the first row's timestep, so one identity row serves both guidance rows.
        fused_tokens: W_fusion precomputed by `encode_identity` (skips MIF; exact, MIF has no timestep).
        use_identity=False: the no-identity branch of identity guidance: fused slots zero, no TAII injection.
        """
        batch = hidden_states.shape[0]
        device, dtype = hidden_states.device, hidden_states.dtype
        timestep = _as_timesteps(timestep, batch, device)

        if use_identity:
            if fused_tokens is None:
                needs_prompt = self.config.use_mif and self.config.mif_identity_text
                if (needs_prompt and identity_prompt_embeds is None) or id_cond is None or id_vit_hidden is None:
                    raise ValueError("identity_prompt_embeds, id_cond and id_vit_hidden are required (or pass fused_tokens)")
                fused_tokens = self.encode_identity(identity_prompt_embeds, id_cond, id_vit_hidden)
            if id_cond is None or id_vit_hidden is None:
                raise ValueError("id_cond and id_vit_hidden are required by TAII")
            taii_timesteps = timestep[:1] if is_infer else timestep
            identity_tokens = self.time_aware_tokens(fused_tokens, id_cond, id_vit_hidden, taii_timesteps)
        else:
            num_fused = self.config.FT_num_querie if self.config.use_mif else 0
            fused_tokens = encoder_hidden_states.new_zeros(1, num_fused, encoder_hidden_states.shape[-1])
            identity_tokens = None
        text = self.build_text_stream(encoder_hidden_states.to(device, dtype), encoder_hidden_mask, fused_tokens)
        sample = self._denoise(hidden_states, text, timestep, timestep_cond, ofs, image_rotary_emb, attention_kwargs, identity_tokens)
        if not return_dict:
            return (sample,)
        return Transformer2DModelOutput(sample=sample)

    def _denoise(
        self,
        hidden_states: torch.Tensor,
        text: torch.Tensor,
        timestep: torch.Tensor,
        timestep_cond: torch.Tensor | None,
        ofs: TimestepLike | None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None,
        attention_kwargs: dict[str, Any] | None,
        identity_tokens: torch.Tensor | None,
    ) -> torch.Tensor:
        """The CogVideoX DiT with the identity cross-attention after every `cross_attn_interval`-th block."""
        batch, num_frames, _, height, width = hidden_states.shape
        dtype = hidden_states.dtype

        emb = self.time_embedding(self.time_proj(timestep).to(dtype), timestep_cond)
        if self.ofs_embedding is not None:
            if ofs is None:
                raise ValueError("this transformer has an ofs embedding (CogVideoX 1.5): pass `ofs`")
            ofs = _as_timesteps(ofs, 1, hidden_states.device)
            emb = emb + self.ofs_embedding(self.ofs_proj(ofs).to(dtype))

        tokens = self.embedding_dropout(self.patch_embed(text, hidden_states))
        text_length = text.shape[1]
        text, video = tokens[:, :text_length], tokens[:, text_length:]

        interval, scale = self.config.cross_attn_interval, self.config.local_face_scale
        for i, block in enumerate(self.transformer_blocks):
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                video, text = self._gradient_checkpointing_func(block, video, text, emb, image_rotary_emb, attention_kwargs)
            else:
                video, text = block(video, text, emb, image_rotary_emb, attention_kwargs)
            if identity_tokens is not None and i % interval == 0:
                video = video + scale * self.perceiver_cross_attention[i // interval](identity_tokens.to(dtype), video)

        video = self.proj_out(self.norm_out(self.norm_final(video), temb=emb))
        return self._unpatchify(video, batch, num_frames, height, width)

    def _unpatchify(self, tokens: torch.Tensor, batch: int, num_frames: int, height: int, width: int) -> torch.Tensor:
        p, p_t = self.config.patch_size, self.config.patch_size_t
        if p_t is None:
            out = tokens.reshape(batch, num_frames, height // p, width // p, -1, p, p)
            return out.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
        out = tokens.reshape(batch, (num_frames + p_t - 1) // p_t, height // p, width // p, -1, p_t, p, p)
        return out.permute(0, 1, 5, 4, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(1, 2)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder: str | None = None, torch_dtype=None, **kwargs):
        """Strict loading from a local folder in the released layout (see `proteus_id.model.checkpoint`)."""
        from .checkpoint import load_model_strict

        return load_model_strict(cls, pretrained_model_name_or_path, subfolder=subfolder, torch_dtype=torch_dtype, **kwargs)


def _as_timesteps(value: TimestepLike, batch: int, device: torch.device) -> torch.Tensor:
    """Scalars and 0-d tensors become a (batch,) tensor; 1-d tensors pass through."""
    t = torch.as_tensor(value, device=device)
    if t.ndim == 0:
        t = t.expand(batch)
    return t.reshape(-1)
