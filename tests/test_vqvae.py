"""The VQ-VAE and its EMA quantizer on real motion windows: shapes, codebook upkeep, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from myocli.data.h5 import read_dataset
from myocli.data.windows import FeatureWindows
from myocli.motion.stats import feature_stats
from myocli.tokenizer import codec as tok
from myocli.tokenizer.model import VQVAE, EMAQuantizer, VQVAEConfig

TINY = dict(width=32, depth=1, codebook_size=32, code_dim=16)


@pytest.fixture(scope="module")
def windows(motion_sets):
    features = tok.sequence_features(read_dataset(motion_sets["train"]))
    mean, std = feature_stats(features)
    return FeatureWindows([(f - mean) / std for f in features], window=16, num_samples=10_000, seed=0), mean, std


def test_encode_decode_shapes_and_residual_codes(windows):
    data, mean, std = windows
    for quantizers in (1, 3):
        model = VQVAE(VQVAEConfig(**TINY, num_quantizers=quantizers)).train()
        model.set_stats(mean, std)
        x, mask = data.__getitems__(list(range(8)))
        reconstruction, loss, logs = model(x, mask)
        assert reconstruction.shape == x.shape and torch.isfinite(loss)
        model.eval()
        codes = model.encode(x)
        assert codes.shape == (8, 4, quantizers) and codes.max() < 32
        assert model.decode(codes).shape == x.shape
        assert model.decode(codes[..., :1]).shape == x.shape  # coarse decode with the first codebook only


def test_ema_codebook_moves_to_assigned_means_and_dead_codes_are_reset():
    torch.manual_seed(0)
    quantizer = EMAQuantizer(codebook_size=4, code_dim=2, decay=0.5).train()
    cluster = torch.tensor([[10.0, 10.0]]) + 0.01 * torch.randn(64, 2)
    quantizer(cluster)  # first batch seeds the codebook with data rows
    assert bool(quantizer.initialised)
    assert (quantizer.codebook - torch.tensor([10.0, 10.0])).abs().max() < 0.1
    elsewhere = torch.tensor([[-5.0, 3.0]]) + 0.01 * torch.randn(64, 2)
    for _ in range(12):
        quantizer(elsewhere)
    # Every code ends near the new data: the used one by EMA, the unused ones by reset.
    assert (quantizer.codebook - torch.tensor([-5.0, 3.0])).abs().max() < 0.2
    # A re-seeded code restarts as one sample (count 1), so it can come alive instead of being
    # re-seeded again at every step.
    assert (quantizer.code_count > 0.5).all()
    two = torch.cat([torch.tensor([[1.0, 0.0]]) + 0.01 * torch.randn(32, 2), torch.tensor([[0.0, 1.0]]) + 0.01 * torch.randn(32, 2)])
    for _ in range(30):
        quantizer(two)
    used = quantizer.nearest(two).unique()
    assert len(used) >= 2  # both clusters have codes of their own


def test_a_few_steps_on_real_windows_lower_the_loss(windows):
    data, mean, std = windows
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(**TINY)).train()
    model.set_stats(mean, std)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    x, mask = data.__getitems__(list(range(32)))
    losses = []
    for _ in range(40):
        _, loss, logs = model(x, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(logs["reconstruction"].item())
    assert losses[-1] < 0.9 * losses[0]


def test_windows_are_a_deterministic_stream_with_masks_for_short_clips(windows):
    data, _, _ = windows
    a, mask_a = data.__getitems__([5, 6, 700])
    b, mask_b = data.__getitems__([5, 6, 700])
    assert torch.equal(a, b) and torch.equal(mask_a, mask_b)
    short = FeatureWindows([np.ones((5, 3), np.float32), np.ones((40, 3), np.float32)], window=16, num_samples=4)
    x, mask = short.__getitems__([0, 1])
    assert sorted(mask.sum(1).tolist()) == [5, 16]
    row = int(mask.sum(1).argmin())
    assert x[row, 5:].abs().sum() == 0  # padding is zero (the mean in normalised units)


def test_saved_tokenizer_loads_identically_and_incompatible_ones_are_refused(windows, tmp_path, monkeypatch):
    from myocli import registry
    from myocli.errors import MyoError

    monkeypatch.setenv("MYO_HOME", str(tmp_path))
    data, mean, std = windows
    model = VQVAE(VQVAEConfig(**TINY)).train()
    model.set_stats(mean, std)
    x, mask = data.__getitems__(list(range(8)))
    model(x, mask)  # one step initialises the codebook
    registry.save(registry.new_version("tokenizer", "good"), model.config.to_dict(), model.state_dict())
    _, loaded, _ = tok.load_tokenizer("good")
    assert torch.equal(loaded.encode(x), model.eval().encode(x)) and torch.equal(loaded.mean, model.mean)
    for name, change, message in (
        ("old-features", {"feature_version": 0}, "features v0"),
        ("other-skeleton", {"skeleton": "smpl22"}, "smpl22"),
        ("odd-config", {"colour": "blue"}, "unknown VQVAEConfig settings"),
    ):
        registry.save(registry.new_version("tokenizer", name), model.config.to_dict() | change, model.state_dict())
        with pytest.raises(MyoError, match=message):
            tok.load_tokenizer(name)
    wider = VQVAE(VQVAEConfig(**TINY | {"width": 48}))
    registry.save(registry.new_version("tokenizer", "mismatch"), model.config.to_dict(), wider.state_dict())
    with pytest.raises(MyoError, match="weights do not fit its config"):
        tok.load_tokenizer("mismatch")
