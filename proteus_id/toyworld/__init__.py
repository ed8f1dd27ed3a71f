"""The procedural identity world and the recipe of the shipped toy model (docs/toyworld.md).

Modules: traits (people and scenes), motions, render (drawing), world (clips, references), captions, dataset
(mp4 + manifest v1), vae, identity_encoder (face backend "toyworld"), judges / judge_eval / judge_metrics, recipe.
"""
