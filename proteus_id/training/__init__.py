"""Training: manifest -> feature cache -> transformer (docs/training.md).

    manifest.py, annotations.py   the dataset format v1 and its validator (proteus-id data validate)
    clips.py, features.py          a row -> frames, masks, reference -> every frozen-model feature
    motion_weight.py, loss.py      AML and the Proteus-ID objective (checked against the release's numbers)
    cache.py, precompute.py        sharded safetensors cache, resumable and split over processes
    config.py                      the strict YAML config
    spec.py                        what the trainer needs to know about the model (inputs, forward, loss)
    data.py, trainer.py            batches and the accelerate loop
    checkpointing.py, validation.py, plots.py
"""
