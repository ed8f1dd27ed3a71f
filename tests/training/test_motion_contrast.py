"""The motion contrast term: each clip trains beside its motion partner (same draws, another clip and caption).

The partner cache here pairs clip i with clip i + 1's video and caption under clip i's id (4 of the 5 clips; the
last one has no partner), precomputed with the clips' settings.
"""

from __future__ import annotations

import json

import pytest
import torch
from training_helpers import PRECOMPUTE, write_config

from proteus_id.errors import UserError
from proteus_id.training.config import ConfigError, load_config


@pytest.fixture(scope="module")
def partner_cache(training_data, tmp_path_factory):
    from proteus_id.training.features import FeatureSettings
    from proteus_id.training.precompute import run_precompute

    model, manifest, _ = training_data
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    partners = []
    for row, other in zip(rows[:4], rows[1:5]):
        partner = dict(other)
        partner["id"] = row["id"]  # paired by id
        partner["video"] = str((manifest.parent / other["video"]).resolve())
        # (its reference stays the other clip's: the pair term uses only the clip's own reference and identity text)
        partners.append(partner)
    root = tmp_path_factory.mktemp("partners")
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in partners))
    cache = root / "cache"
    run_precompute(root / "manifest.jsonl", cache, FeatureSettings(model=str(model), **PRECOMPUTE), shard_size=2,
                   progress=False)
    return cache


def _spec_and_batch(training_data, partners_dir, prompt_dropout=0.0):
    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.config import TrainConfig
    from proteus_id.training.data import CacheDataset, Collate
    from proteus_id.training.spec import ProteusIDSpec

    model_dir, _, cache_dir = training_data
    config = TrainConfig(model=str(model_dir), output_dir="unused")
    config.data.cache, config.data.partner_cache = str(cache_dir), str(partners_dir)
    config.loss.motion_contrast_weight = 0.5
    config.conditioning.prompt_dropout = prompt_dropout
    spec = ProteusIDSpec(config, torch.device("cpu"))
    cache = FeatureCache(cache_dir)
    dataset = CacheDataset(cache, FeatureCache(partners_dir))
    batch = Collate(cache.settings["max_text_length"], cache.null_text())([dataset[i] for i in (0, 3, 4)])
    return spec, batch


def test_a_pair_shares_every_draw_and_the_term_is_its_motion_error(training_data, partner_cache):
    """One forward of 2B rows: both halves see the same timestep, noise, reference and identity text, each its own
    clip and caption; the term is motion_contrast_error of the two halves' x0 errors over the pairs that have a
    partner (item 4 has none: its own clip stands in, has_partner False, and it adds nothing)."""
    from proteus_id.training.loss import motion_contrast_error, x0_prediction

    spec, batch = _spec_and_batch(training_data, partner_cache)
    assert batch["has_partner"].tolist() == [True, True, False]
    seen = {}

    def fake_forward(model, noisy, timesteps, conds, model_config):
        seen.update(noisy=noisy, timesteps=timesteps, conds=conds)
        return 0.3 * noisy + 0.1 * conds["encoder_hidden_states"].mean()  # depends on the caption, deterministic

    spec.forward = fake_forward
    model = spec.load_model()
    stds = {key: batch.pop(key) for key in ("latents_std", "partner.latents_std")}
    loss, info = spec.training_loss(model, batch, torch.Generator().manual_seed(3), model.config)

    n = 3
    t = seen["timesteps"]
    assert torch.equal(t[:n], t[n:])
    conds = seen["conds"]
    for key in ("image_latents", "identity_prompt_embeds", "id_cond"):
        assert torch.equal(conds[key][:n], conds[key][n:]), key
    prompts = conds["encoder_hidden_states"]
    assert not torch.equal(prompts[0], prompts[n]) and torch.equal(prompts[2], prompts[n + 2])  # item 4: its own

    # the same noise on both halves (x0 = the latent means here: the std keys are left out below)
    alphas = spec.scheduler.alphas_cumprod[t].float().view(-1, 1, 1, 1, 1)
    mean_a = spec._pad_frames(batch["latents_mean"].float())
    mean_b = spec._pad_frames(batch["partner.latents_mean"].float())
    noisy = seen["noisy"]
    noise_a = (noisy[:n] - alphas[:n].sqrt() * mean_a) / (1 - alphas[:n]).sqrt()
    noise_b = (noisy[n:] - alphas[n:].sqrt() * mean_b) / (1 - alphas[n:]).sqrt()
    torch.testing.assert_close(noise_a, noise_b, atol=2e-3, rtol=0)

    # the term, recomputed from what the model saw
    x0_hat = x0_prediction(spec.scheduler, fake_forward(None, noisy, t, conds, None).float(), noisy, t)
    per_pair = motion_contrast_error(x0_hat[:n], mean_a, x0_hat[n:], mean_b, mean_a, mean_b, 5e-4)
    assert per_pair[0] > 0 and per_pair[1] > 0
    torch.testing.assert_close(info["motion_contrast"], per_pair[:2].mean().to(info["motion_contrast"].dtype),
                               rtol=1e-4, atol=1e-6)
    assert torch.isfinite(loss)

    # with the posterior std: one draw for both clips. A partner with the clip's own latents gets the same x_t.
    batch["latents_std"] = stds["latents_std"]
    batch["partner.latents_mean"], batch["partner.latents_std"] = batch["latents_mean"], stds["latents_std"]
    spec.training_loss(model, batch, torch.Generator().manual_seed(3), model.config)
    torch.testing.assert_close(seen["noisy"][:n], seen["noisy"][n:], atol=0, rtol=0)


def test_a_clip_that_is_its_own_partner_adds_nothing_and_dropped_captions_are_not_counted(training_data, partner_cache):
    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.data import CacheDataset, Collate

    spec, _ = _spec_and_batch(training_data, partner_cache)
    cache = FeatureCache(training_data[2])
    # the clips' own cache as the partner cache: every pair is a clip and itself
    batch = Collate(cache.settings["max_text_length"], cache.null_text())([CacheDataset(cache, cache)[i] for i in range(3)])
    assert batch["has_partner"].all()
    model = spec.load_model()
    _, info = spec.training_loss(model, batch, torch.Generator().manual_seed(0), model.config)
    assert info["motion_contrast"].item() == 0.0

    spec, batch = _spec_and_batch(training_data, partner_cache, prompt_dropout=1.0)  # every caption dropped
    _, info = spec.training_loss(model, batch, torch.Generator().manual_seed(0), model.config)
    assert info["motion_contrast"].item() == 0.0


def test_motion_contrast_error_counts_only_the_motion_difference():
    from proteus_id.training.loss import motion_contrast_error

    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, 4, 4, 4, generator=g)
    b = a.clone()
    b[:, 1:, :, :2, :2] += 0.1  # a small motion: partner differs in a corner from frame 1 on
    offset = torch.randn(2, 3, 4, 4, 4, generator=g)  # an error both predictions share (a wrong colour)
    right = motion_contrast_error(a + offset, a, b + offset, b, a, b, floor=1e-9)
    torch.testing.assert_close(right, torch.zeros(2), atol=1e-6, rtol=0)
    same = motion_contrast_error(a + offset, a, a + offset, b, a, b, floor=1e-9)  # the motion missed entirely
    torch.testing.assert_close(same, torch.ones(2), atol=1e-4, rtol=0)
    half = motion_contrast_error(a, a, (a + b) / 2, b, a, b, floor=1e-9)
    torch.testing.assert_close(half, torch.full((2,), 0.25), atol=1e-4, rtol=0)


def test_training_with_partners_logs_the_term_and_checks_the_cache(training_data, partner_cache, tmp_path):
    import shutil

    from proteus_id.training.trainer import train

    model, _, cache = training_data
    keys = dict(model=str(model), data={"cache": str(cache), "partner_cache": str(partner_cache)}, max_steps=2,
                loss={"motion_contrast_weight": 0.2})
    result = train(load_config(write_config(tmp_path / "c.yaml", output_dir=str(tmp_path / "run"), **keys)))
    assert result.step == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    records = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert all(isinstance(r["motion_contrast"], float) and r["motion_contrast"] >= 0 for r in records)
    assert any(r["motion_contrast"] > 0 for r in records)

    with pytest.raises(ConfigError, match="partner_cache"):
        load_config(write_config(tmp_path / "d.yaml", model=str(model), output_dir=str(tmp_path / "d"),
                                 data={"cache": str(cache)}, loss={"motion_contrast_weight": 0.2}))
    other = tmp_path / "other"
    shutil.copytree(partner_cache, other)
    index = json.loads((other / "index.json").read_text())
    index["settings"]["flow_options"] = {"preset": "other"}
    (other / "index.json").write_text(json.dumps(index))
    keys["data"] = {"cache": str(cache), "partner_cache": str(other)}
    with pytest.raises(UserError, match="other settings.*flow_options"):
        train(load_config(write_config(tmp_path / "e.yaml", output_dir=str(tmp_path / "e"), **keys)))


def test_an_unreadable_partner_makes_the_item_a_counted_bad_item(training_data, partner_cache, tmp_path):
    import shutil

    from proteus_id.training.cache import FeatureCache
    from proteus_id.training.data import BadItem, CacheDataset

    broken = tmp_path / "partners"
    shutil.copytree(partner_cache, broken)
    partners = FeatureCache(broken)
    (broken / partners.items[0].shard).unlink()  # the shard holding the first partner is gone
    dataset = CacheDataset(FeatureCache(training_data[2]), partners)
    item = dataset[0]
    assert isinstance(item, BadItem) and item.reason.startswith("partner: ") and item.id == partners.items[0].id
    assert not isinstance(dataset[4], BadItem) and not dataset[4]["has_partner"]  # no partner: itself, not bad
