"""How much does a toy model's prediction respond to each kind of prompt edit? A diagnostic for prompts that are
ignored: for one base prompt per identity, change only its motion, or only its clothes colour, place or light,
and print |v(edited) - v(base)| / |v(base)| of the transformer's prediction at a few noise levels (same noisy
latent, same face), beside how much the edit changes the text encoder's output.

    python benchmarks/toy_text_sensitivity.py ROOT/trained/full [ROOT/trained/full_s4000 ...] [--identities 6]

A model that follows a kind of edit changes its prediction for it; one that has not learned it gives ~0. Uses
`judge_val` identities (not the benchmark's).
"""

from __future__ import annotations

import argparse

import numpy as np

BASE = "A {gender} wearing a red t-shirt walks from right to left in a green park, in bright daylight."
EDITS = {  # kind of edit -> (what is replaced, by what)
    "motion: walk right": ("walks from right to left", "walks from left to right"),
    "motion: move closer": ("walks from right to left", "moves closer to the camera"),
    "motion: nod": ("walks from right to left", "nods"),
    "motion: stand still": ("walks from right to left", "stands still"),
    "clothes colour": ("a red t-shirt", "a blue t-shirt"),
    "place": ("in a green park", "at the beach"),
    "light": ("in bright daylight", "in dim light"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--identities", type=int, default=6)
    parser.add_argument("--timesteps", default="999,700")
    args = parser.parse_args()

    import torch

    from proteus_id.identity.backends import backend_for_model
    from proteus_id.pipeline.pipeline import ProteusIDPipeline
    from proteus_id.toyworld.traits import identity_numbers, sample_identity
    from proteus_id.toyworld.world import render_reference

    torch.set_num_threads(1)
    timesteps = [int(t) for t in args.timesteps.split(",")]
    print(f"{'model':28s} {'edit':20s} " + " ".join(f"{'t=' + str(t):>7s}" for t in timesteps) + "   text change")
    for model in args.models:
        pipe = ProteusIDPipeline.from_pretrained(model)
        backend = backend_for_model(model)
        net = pipe.transformer
        length = net.config.max_text_seq_length

        def encode(text: str):
            return pipe.encode_prompts([text], length, "cpu", room=length - net.config.FT_num_querie)

        changes: dict[str, list[list[float]]] = {name: [] for name in EDITS}
        text_changes: dict[str, list[float]] = {name: [] for name in EDITS}
        for k, number in enumerate(identity_numbers("judge_val", args.identities)):
            identity = sample_identity(number)
            features = backend.extract(render_reference(identity, variant=0))
            base = BASE.format(gender=identity.gender)
            with torch.no_grad():
                pixels = pipe.video_processor.preprocess(features.face_crop, height=64, width=64)
                image = pipe.prepare_image_latents(pixels, 5, torch.float32, torch.Generator().manual_seed(k))
                fused = net.encode_identity(encode(f"a {identity.gender}")[0][:, :32], features.id_cond,
                                            features.id_vit_hidden)
                rotary = pipe.rotary_embeddings(64, 64, image.shape[1], "cpu")
                noisy = torch.randn(image.shape, generator=torch.Generator().manual_seed(100 + k))

                def predict(text: str, t: int) -> torch.Tensor:
                    embeds, mask = encode(text)
                    return net(hidden_states=torch.cat([noisy, image], 2), encoder_hidden_states=embeds,
                               encoder_hidden_mask=mask, timestep=torch.tensor([t]), image_rotary_emb=rotary,
                               id_cond=features.id_cond, id_vit_hidden=features.id_vit_hidden, is_infer=True,
                               return_dict=False, fused_tokens=fused)[0]

                base_v = {t: predict(base, t) for t in timesteps}
                base_e = encode(base)[0]
                for name, (old, new) in EDITS.items():
                    text = base.replace(old, new)
                    changes[name].append([float((predict(text, t) - base_v[t]).norm() / base_v[t].norm())
                                          for t in timesteps])
                    edited_e = encode(text)[0]
                    n = min(base_e.shape[1], edited_e.shape[1])
                    text_changes[name].append(float((edited_e[:, :n] - base_e[:, :n]).norm() / base_e[:, :n].norm()))
        for name in EDITS:
            per_t = np.mean(changes[name], axis=0)
            print(f"{model[-28:]:28s} {name:20s} " + " ".join(f"{x:7.3f}" for x in per_t)
                  + f"   {np.mean(text_changes[name]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
