"""Helpers for the curation tests (imported by file name: pytest puts this folder on sys.path).

The test settings, and tiny random transformers models saved to folders, to exercise the VLM captioner and the
segmentation masks through the same loading code real checkpoints use (no weights exist on this machine; outputs are
random words and random masks, so the tests check the plumbing, not the quality).
"""

from __future__ import annotations

from pathlib import Path

# Short windows so the story's stretches (40/20/20/24 frames at 8 fps) each hold a window; fewer embeddings (the
# slowest step) keep the test time down. Everything else is the shipped default.
TEST_OVERRIDES = {
    "windows": {"min_frames": 14, "max_frames": 18},
    "faces": {"embeddings_per_second": 0.5},
}
TEST_SET_ARGS = ["--set", "windows.min_frames=14", "--set", "windows.max_frames=18", "--set", "faces.embeddings_per_second=0.5"]


def make_tiny_vlm(folder: Path) -> Path:
    """A Llava (CLIP vision tower + Llama) with the project's tiny word-level tokenizer and a chat template."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    from proteus_id.testing.tiny import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    template = (
        "{% for m in messages %}{% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}"
    )
    tokenizer.chat_template = template
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", chat_template=template,
        image_token="<image>", num_additional_image_tokens=1,  # the CLS token of the CLIP tower
    )
    processor.save_pretrained(folder)
    return folder


def make_tiny_segmenter(folder: Path) -> Path:
    """A 2-block SegFormer whose labels are background and person."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3], strides=[4, 2],
        num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16, num_labels=2,
        id2label={0: "background", 1: "person"}, label2id={"background": 0, "person": 1},
    )
    torch.manual_seed(0)
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder
