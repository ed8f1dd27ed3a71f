"""GPU memory for the full released model, from parameter counts (no weights needed).

    python benchmarks/memory_table.py

Builds the transformer (CogVideoX-5B-I2V + MIF + TAII, our class defaults = the released config), T5-XXL's encoder
and the CogVideoX VAE on the meta device, counts their tensors and prints bf16 weight memory per component and per
offload preset. Activations come on top (they grow with frames x height x width; at 49x480x720 the DiT's
attention over ~17.8k tokens dominates).
"""

from __future__ import annotations

from accelerate import init_empty_weights
from diffusers import AutoencoderKLCogVideoX
from transformers import T5Config, T5EncoderModel

from proteus_id import ProteusIDTransformer3DModel
from proteus_id.model.checkpoint import parameter_counts
from proteus_id.pipeline.memory import ComponentSize, offload_estimates

GIB = 1024**3


def main() -> None:
    with init_empty_weights(include_buffers=False):
        transformer = ProteusIDTransformer3DModel()
        t5 = T5EncoderModel(T5Config(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=32128,
                                     feed_forward_proj="gated-gelu", is_encoder_decoder=False))
        vae = AutoencoderKLCogVideoX()  # diffusers' defaults are CogVideoX's VAE
    t5.encoder.embed_tokens = t5.shared  # tied in the real checkpoint (one 32128 x 4096 embedding)
    sizes = []
    for name, model, blocks in (("transformer", transformer, transformer.transformer_blocks),
                                ("text_encoder (T5-XXL)", t5, t5.encoder.block),
                                ("vae", vae, list(vae.encoder.down_blocks) + list(vae.decoder.up_blocks))):
        counts = parameter_counts(model)
        largest = max(sum(p.numel() for p in b.parameters()) for b in blocks)
        sizes.append(ComponentSize(name, sum(counts.values()), largest, {"bf16"}, counts))
    print("| component | parameters | bf16 weights |")
    print("|---|---|---|")
    for s in sizes:
        print(f"| {s.name} | {s.parameters / 1e9:.3f}B | {s.parameters * 2 / GIB:.1f} GiB |")
    print("\n| transformer module | parameters |")
    print("|---|---|")
    for module, count in sizes[0].by_module.items():
        print(f"| {module} | {count / 1e6:,.1f}M |")
    print("\n| --offload | weights on the GPU (bf16) |")
    print("|---|---|")
    for preset, gib in offload_estimates(sizes, 2).items():
        print(f"| {preset} | {gib:.1f} GiB |")


if __name__ == "__main__":
    main()
