"""The trainer on the tiny model: exact resume, a fixed batch that is learnt, LoRA export, config errors."""

from __future__ import annotations

import json

import pytest
import torch
from training_helpers import parameter_digest, write_config

from proteus_id.errors import UserError
from proteus_id.training.config import ConfigError, load_config


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def test_resume_is_exact(training_data, tmp_path):
    """4 steps, stop, resume to 8 == 8 steps straight: same losses, same weights (model, optimizer, schedule, RNG,
    data position all restored). Two micro-batches per step, so steps straddle epoch ends (5 items, batch 2)."""
    from proteus_id.model.transformer import ProteusIDTransformer3DModel
    from proteus_id.training.trainer import train

    model, _, cache = training_data
    common = dict(model=str(model), data={"cache": str(cache)}, batch_size=2, gradient_accumulation_steps=2,
                  conditioning={"prompt_dropout": 0.3, "identity_prompt_dropout": 0.3})
    straight = load_config(write_config(tmp_path / "a.yaml", output_dir=str(tmp_path / "a"), **common))
    resumed = load_config(write_config(tmp_path / "b.yaml", output_dir=str(tmp_path / "b"), **common))

    result = train(straight)
    assert result.step == 8 and not result.stopped_early
    first = train(resumed, stop_at_step=4, export_at_stop=True)
    assert first.stopped_early and first.step == 4
    assert not (tmp_path / "b" / "transformer").exists()  # not the trained model yet, only step 4's weights:
    step4 = ProteusIDTransformer3DModel.from_pretrained(tmp_path / "b" / "step-000004" / "transformer")
    second = train(resumed)
    assert second.step == 8

    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert len(a) == len(b) == 8
    assert a == b, f"losses differ after resume: {a} vs {b}"
    records = [json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    norms = [r["grad_norm"] for r in records]  # before clipping, so it can exceed max_grad_norm (1.0)
    assert all(n > 0 and n == n for n in norms) and len(set(norms)) == len(norms)
    weights_a = ProteusIDTransformer3DModel.from_pretrained(tmp_path / "a" / "transformer")
    weights_b = ProteusIDTransformer3DModel.from_pretrained(tmp_path / "b" / "transformer")
    assert parameter_digest(weights_a) == parameter_digest(weights_b)
    base = ProteusIDTransformer3DModel.from_pretrained(model / "transformer")
    assert parameter_digest(weights_a) != parameter_digest(base)  # it did train
    assert parameter_digest(step4) not in (parameter_digest(weights_b), parameter_digest(base))  # half-way
    # keep_last 2: checkpoints 4 and 8 remain (each with its exact training state)
    names = sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir())
    assert names == ["checkpoint-0000004", "checkpoint-0000008"]


def test_fixed_batch_is_learnt(training_data):
    """One batch with fixed noise and timesteps, 40 AdamW steps of the real training loss: the loss falls."""
    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.data import CacheDataset, Collate
    from proteus_id.training.spec import ProteusIDSpec

    model_dir, _, cache_dir = training_data
    config = TrainConfig(model=str(model_dir), output_dir="unused")
    config.data.cache = str(cache_dir)
    config.loss.face_mask_probability = 0.0
    config.conditioning.image_dropout = 0.0
    spec = ProteusIDSpec(config, torch.device("cpu"))
    cache = FeatureCache(cache_dir)
    batch = Collate(cache.settings["max_text_length"], cache.null_text())([CacheDataset(cache)[i] for i in range(2)])
    model = spec.load_model()
    spec.set_trainable(model, "full")
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(40):
        rng = torch.Generator().manual_seed(0)  # the same draws every step: a fixed problem to learn
        loss, _ = spec.training_loss(model, batch, rng, model.config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses
    assert all(torch.isfinite(torch.tensor(losses)))


def test_lora_and_new_modules_modes(training_data, tmp_path):
    """LoRA touches only the DiT blocks' attention and the new modules train fully; the merged export loads strictly
    and computes what the adapted model computes."""
    from proteus_id.model.transformer import ProteusIDTransformer3DModel
    from proteus_id.training.checkpointing import export_transformer_unwrapped
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.spec import ProteusIDSpec
    from proteus_id.testing.tiny import tiny_identity_features

    model_dir, _, _ = training_data
    config = TrainConfig(model=str(model_dir), output_dir="unused")
    config.lora.rank, config.lora.alpha = 4, 4.0
    spec = ProteusIDSpec(config, torch.device("cpu"))

    model = spec.load_model()
    spec.set_trainable(model, "new_modules")
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fuse_token_former", "fuse_token_adapter", "fuse_facital_attention", "perceiver_cross_attention"}

    model = spec.load_model()
    spec.set_trainable(model, "lora")
    lora_names = [n for n, p in model.named_parameters() if "lora_" in n]
    assert lora_names and all(n.startswith("transformer_blocks.") for n in lora_names)
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("patch_embed"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)  # B starts at zero: make the adapter do something
    model.eval()
    g = torch.Generator().manual_seed(3)
    id_cond, vit = tiny_identity_features(seed=1)
    inputs = dict(hidden_states=torch.randn(1, 3, 8, 4, 4, generator=g), encoder_hidden_states=torch.randn(1, 16, 32, generator=g),
                  identity_prompt_embeds=torch.randn(1, 32, 32, generator=g), timestep=torch.tensor([500]),
                  id_cond=id_cond, id_vit_hidden=vit, return_dict=False)
    with torch.no_grad():
        expected = model(**inputs)[0]
    export_transformer_unwrapped(model, tmp_path / "transformer", lora=True)
    merged = ProteusIDTransformer3DModel.from_pretrained(tmp_path / "transformer").eval()
    with torch.no_grad():
        got = merged(**inputs)[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_config_errors_name_the_key(tmp_path, training_data):
    model, _, cache = training_data
    good = dict(model=str(model), output_dir=str(tmp_path / "o"), data={"cache": str(cache)})
    with pytest.raises(ConfigError, match="unknown config key 'optimizer.learning_rate'"):
        load_config(write_config(tmp_path / "c1.yaml", **good, optimizer={"learning_rate": 1e-4}))
    with pytest.raises(ConfigError, match="config key 'batch_size': expected int, got 'two'"):
        load_config(write_config(tmp_path / "c2.yaml", **{**good, "batch_size": "two"}))
    with pytest.raises(ConfigError, match="config key 'mode': expected 'full' | 'lora' | 'new_modules'"):
        load_config(write_config(tmp_path / "c3.yaml", **{**good, "mode": "everything"}))
    with pytest.raises(ConfigError, match="'conditioning.image_dropout' is a probability"):
        load_config(write_config(tmp_path / "c4.yaml", **good, conditioning={"image_dropout": 5}))
    with pytest.raises(ConfigError, match="'data.cache' is required"):
        load_config(write_config(tmp_path / "c5.yaml", model=str(model), output_dir="o"))
    config = load_config(write_config(tmp_path / "c6.yaml", **good), {"optimizer.lr": "3e-6", "max_steps": 3})
    assert config.optimizer.lr == 3e-6 and config.max_steps == 3 and config.optimizer.betas == [0.9, 0.95]
    from proteus_id.cli.main import main

    assert main(["train", "--config", str(tmp_path / "c2.yaml")]) == 2
    bad_cache = load_config(write_config(tmp_path / "c7.yaml", **{**good, "data": {"cache": str(tmp_path / "none")}}))
    from proteus_id.training.trainer import train

    with pytest.raises(UserError, match="has no index.json"):
        train(bad_cache)


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs" / "train"
    configs = {p.stem: load_config(p) for p in sorted(root.glob("*.yaml"))}
    assert {"release", "small", "lora"} <= set(configs)
    release = configs["release"]
    assert (release.optimizer.lr, release.optimizer.betas, release.optimizer.weight_decay) == (3e-6, [0.9, 0.95], 1e-4)
    assert (release.lr_scheduler.warmup_steps, release.max_steps, release.precompute.frame_stride) == (200, 8000, 3)


def test_bf16_checkpointing_ema_validation_and_logs(training_data, tmp_path):
    """The optional parts together: bf16 autocast, gradient checkpointing, EMA export, validation video, TensorBoard,
    the relative motion term in the train log."""
    from proteus_id.model.transformer import ProteusIDTransformer3DModel
    from proteus_id.pipeline.video import read_video
    from proteus_id.training.trainer import train

    model, _, cache = training_data
    config = load_config(write_config(
        tmp_path / "all.yaml", model=str(model), output_dir=str(tmp_path / "run"), data={"cache": str(cache)},
        max_steps=2, mixed_precision="bf16", gradient_checkpointing=True, ema={"enabled": True, "decay": 0.5},
        validation={"every_steps": 2, "num_items": 1, "num_inference_steps": 2},
        logging={"tensorboard": True, "every_steps": 1}, loss={"relative_motion_weight": 0.1},
        checkpoint={"every_steps": 2, "keep_last": 1, "export_transformer": True},
    ))
    result = train(config)
    run = tmp_path / "run"
    assert result.step == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    frames, _ = read_video(next((run / "validation" / "step-0000002").glob("*.mp4")))
    assert frames.shape == (9, 32, 32, 3)
    assert (run / "validation" / "step-0000002" / "contact_sheet.png").is_file()
    trained = ProteusIDTransformer3DModel.from_pretrained(run / "transformer")
    ema = ProteusIDTransformer3DModel.from_pretrained(run / "transformer_ema")
    base = ProteusIDTransformer3DModel.from_pretrained(model / "transformer")
    digests = [parameter_digest(m) for m in (trained, ema, base)]
    assert digests[0] != digests[1] != digests[2]  # the EMA weights are neither the base nor the last ones
    assert (run / "checkpoints" / "checkpoint-0000002" / "transformer_ema" / "config.json").is_file()
    assert list((run / "logs").rglob("events.out.tfevents.*")) and (run / "loss.png").is_file()
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert all(isinstance(r["relative_motion"], float) and r["relative_motion"] > 0 for r in records)


def test_pixel_space_image_noise_is_the_release_path(training_data):
    """image_noise_space: pixel noises the face crop's pixels and runs the VAE in the step (the release's way);
    with no noise and the same draw it reproduces the cached posterior of the face crop."""
    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.data import CacheDataset, Collate
    from proteus_id.training.spec import ProteusIDSpec

    model_dir, _, cache_dir = training_data
    config = TrainConfig(model=str(model_dir), output_dir="unused")
    config.conditioning.image_noise_space, config.conditioning.image_dropout = "pixel", 0.0
    config.conditioning.image_noise_log_mean = -30.0  # sigma ~ 1e-13: no noise, to compare with the cache
    spec = ProteusIDSpec(config, torch.device("cpu"))
    cache = FeatureCache(cache_dir)
    batch = Collate(cache.settings["max_text_length"], cache.null_text())([CacheDataset(cache)[i] for i in range(2)])
    image = spec.conditions(batch, torch.Generator().manual_seed(1), num_frames=3)["image_latents"]
    assert image.shape == (2, 3, 4, 4, 4) and image[:, 1:].abs().sum() == 0
    cached = batch["image_latents_mean"][:, 0]
    # a posterior draw around the cached mean with the cached std: standardised residuals look like N(0, 1)
    z = (image[:, 0] - cached) / batch["image_latents_std"][:, 0]
    assert abs(z.mean()) < 0.3 and 0.7 < z.std() < 1.3


def test_late_timestep_fraction(training_data):
    """Off (the default), the timesteps are the release's single uniform draw; at fraction f, a share f of them
    comes from [late_timestep_from, late_timestep_to or T); a band outside [0, T] or empty is a config error."""
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.spec import ProteusIDSpec

    model_dir, _, _ = training_data
    config = TrainConfig(model=str(model_dir), output_dir="unused")
    spec = ProteusIDSpec(config, torch.device("cpu"))
    total = spec.scheduler.config.num_train_timesteps
    uniform = spec.sample_timesteps(4000, torch.Generator().manual_seed(3))
    assert torch.equal(uniform, torch.randint(0, total, (4000,), generator=torch.Generator().manual_seed(3)))
    config.loss.late_timestep_fraction, config.loss.late_timestep_from = 0.75, 800
    biased = spec.sample_timesteps(4000, torch.Generator().manual_seed(3))
    late_share = (biased >= 800).float().mean().item()
    assert abs(late_share - (0.75 + 0.25 * (total - 800) / total)) < 0.03  # 75% forced late, plus the uniform draw's own
    assert biased.min() >= 0 and biased.max() < total
    config.loss.late_timestep_from, config.loss.late_timestep_to = 100, 500  # a band below T: [100, 500)
    band = spec.sample_timesteps(4000, torch.Generator().manual_seed(3))
    in_band = ((band >= 100) & (band < 500)).float().mean().item()
    assert abs(in_band - (0.75 + 0.25 * 400 / total)) < 0.03
    assert torch.equal(band[(band >= 500)], uniform[(band >= 500)])  # above the band only the uniform draw's own
    config.loss.late_timestep_to = total + 1
    with pytest.raises(ConfigError, match="loss.late_timestep_to"):
        ProteusIDSpec(config, torch.device("cpu"))
    config.loss.late_timestep_to = 100  # empty band
    with pytest.raises(ConfigError, match="loss.late_timestep_to"):
        ProteusIDSpec(config, torch.device("cpu"))
    config.loss.late_timestep_from, config.loss.late_timestep_to = total, None  # refused when the trainer is set up
    with pytest.raises(ConfigError, match="loss.late_timestep_from"):
        ProteusIDSpec(config, torch.device("cpu"))


def test_relative_motion_term_is_added_to_the_step_loss(training_data):
    """loss.relative_motion_weight r adds r * R (relative_motion_error, tested in test_aml_golden.py) to the step's
    loss and reports R; the draws are unchanged, so the rest of the loss is the same number."""
    from proteus_id.model.transformer import ProteusIDTransformer3DModel
    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.data import CacheDataset, Collate
    from proteus_id.training.spec import ProteusIDSpec

    model_dir, _, cache_dir = training_data
    model = ProteusIDTransformer3DModel.from_pretrained(model_dir / "transformer").eval()
    cache = FeatureCache(cache_dir)
    batch = Collate(cache.settings["max_text_length"], cache.null_text())([CacheDataset(cache)[i] for i in range(2)])
    config = TrainConfig(model=str(model_dir), output_dir="unused")
    losses = {}
    for weight in (0.0, 0.5):
        config.loss.relative_motion_weight = weight
        spec = ProteusIDSpec(config, torch.device("cpu"))
        with torch.no_grad():
            losses[weight] = spec.training_loss(model, batch, torch.Generator().manual_seed(5), model.config)
    (plain, plain_info), (with_term, info) = losses[0.0], losses[0.5]
    assert "relative_motion" not in plain_info and info["relative_motion"] > 0
    torch.testing.assert_close(with_term.double(), plain.double() + 0.5 * info["relative_motion"].double(), atol=1e-5, rtol=1e-5)


def test_export_has_the_released_layout(golden, tmp_path):
    """A transformer loaded from the release's folder and exported by the trainer has the release's file names,
    config keys and tensor names, so the release's loader finds everything it expects."""
    from safetensors import safe_open

    from proteus_id.model.transformer import ProteusIDTransformer3DModel
    from proteus_id.training.checkpointing import export_transformer_unwrapped

    official = golden / "official_tiny_transformer"
    model = ProteusIDTransformer3DModel.from_pretrained(official)
    export_transformer_unwrapped(model, tmp_path / "transformer")
    with safe_open(str(official / "diffusion_pytorch_model.safetensors"), "pt") as f:
        official_names = set(f.keys())
    with safe_open(str(tmp_path / "transformer" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert set(f.keys()) == official_names
        assert torch.equal(f.get_tensor("fuse_facital_attention.latents"), model.fuse_facital_attention.latents)
    official_config = json.loads((official / "config.json").read_text())
    exported_config = json.loads((tmp_path / "transformer" / "config.json").read_text())
    missing = {k for k in official_config if not k.startswith("_")} - set(exported_config)
    assert not missing
    assert exported_config["_class_name"] == "ProteusIDTransformer3DModel"


def test_more_config_errors_name_the_key(tmp_path, training_data):
    """A scheduler name get_scheduler does not know, and --set onto a non-section, fail as config errors."""
    model, _, cache = training_data
    good = dict(model=str(model), output_dir=str(tmp_path / "o"), data={"cache": str(cache)})
    with pytest.raises(ConfigError, match="config key 'lr_scheduler.name': expected 'cosine_with_restarts'"):
        load_config(write_config(tmp_path / "s.yaml", **good, lr_scheduler={"name": "cosine_restart"}))
    path = write_config(tmp_path / "g.yaml", **good)
    with pytest.raises(ConfigError, match="cannot set 'max_steps.x': config key 'max_steps' is not a section"):
        load_config(path, {"max_steps.x": 1})
    with pytest.raises(ConfigError, match="'loss.frame_difference_weight' must be >= 0, got -1"):
        load_config(write_config(tmp_path / "f.yaml", **good, loss={"frame_difference_weight": -1.0}))
    with pytest.raises(ConfigError, match="'loss.relative_motion_floor' must be > 0, got 0"):
        load_config(write_config(tmp_path / "r.yaml", **good, loss={"relative_motion_weight": 0.2, "relative_motion_floor": 0}))
    path.write_text(path.read_text() + "ema:\n")  # an empty section in the YAML
    assert load_config(path, {"ema.enabled": True}).ema.enabled


def test_unreadable_cache_items_are_counted_and_stop_the_run(training_data, tmp_path):
    """A truncated shard: its items are skipped with a reason (never resampled); past data.max_bad_fraction the run
    stops with an error; below it the counts are kept in the checkpoint."""
    import shutil

    from proteus_id.training.cache import FeatureCache, list_shards
    from proteus_id.training.data import BadItem, CacheDataset
    from proteus_id.training.trainer import train

    model, _, clean = training_data
    cache = tmp_path / "cache"
    shutil.copytree(clean, cache)
    shard = list_shards(cache)[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    broken = {entry["id"] for entry in json.loads((cache / "index.json").read_text())["items"] if entry["shard"] == shard.name}
    dataset = CacheDataset(FeatureCache(cache))
    items = [dataset[i] for i in range(len(dataset))]
    assert {i.id for i in items if isinstance(i, BadItem)} == broken and len(broken) == 2
    assert all("SafetensorError" in i.reason for i in items if isinstance(i, BadItem))

    common = dict(model=str(model), data={"cache": str(cache), "max_bad_fraction": 0.05}, batch_size=2)
    strict = load_config(write_config(tmp_path / "strict.yaml", output_dir=str(tmp_path / "s"), **common, max_steps=30))
    with pytest.raises(UserError, match="cache items were unreadable .more than data.max_bad_fraction 0.05"):
        train(strict)
    common["data"]["max_bad_fraction"] = 1.0
    tolerant = load_config(write_config(tmp_path / "tolerant.yaml", output_dir=str(tmp_path / "t"), **common, max_steps=2,
                                        checkpoint={"every_steps": 2, "keep_last": 1, "export_transformer": False}))
    assert train(tolerant).step == 2
    state = json.loads((tmp_path / "t" / "checkpoints" / "checkpoint-0000002" / "trainer_state.json").read_text())
    assert state["bad_items"] > 0 and sum(state["bad_reasons"].values()) == state["bad_items"]
