"""Sampling options shared by the pipeline and the command line (no torch here: the CLI reads them at start-up)."""

# What identity guidance's negative prediction lacks (`ProteusIDPipeline(identity_guidance_negative=...)`):
#   face_latent      the image-condition latent zeroed, as training's `conditioning.image_dropout` shows the model
#   identity_prompt  the empty identity prompt into MIF, as training's `conditioning.identity_prompt_dropout`
#   face_latent+identity_prompt  both
#   branch           the whole face branch off (fused slots zero, no TAII injection): a state training never shows
IDENTITY_GUIDANCE_NEGATIVES = ("face_latent", "identity_prompt", "face_latent+identity_prompt", "branch")
DEFAULT_IDENTITY_GUIDANCE_NEGATIVE = "face_latent"  # the one measured to raise identity (docs/toyworld.md)
