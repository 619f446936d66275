"""Vectorised seeded noise (issue 18): draws in blocks, independent of ``batch_size``."""

from __future__ import annotations

import math

import pytest
import torch

import faithmap as fm
from faithmap.core.seeding import (
    _BLOCK_TAG,
    BLOCK,
    BlockDraws,
    randn_blocks,
    row_seed,
    sample_keys,
)
from tiny_models import tiny_cnn


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Four real photos at 16² (scikit-image / scikit-learn samples)."""
    pytest.importorskip("skimage")
    from faithmap.data.samples import sample_images

    return torch.stack(list(sample_images(16).values())[:4])


def test_a_row_is_its_blocks_documented_draw():
    """Draw d of sample i is row d mod BLOCK of ONE randn(BLOCK, *shape) call seeded by
    row_seed(seed, i, tag, stream, d div BLOCK)."""
    got = randn_blocks(5, [0, 2, 2], [3, 0, 11], (4, 3), torch.float64, torch.device("cpu"))
    for row, (i, d) in enumerate([(0, 3), (2, 0), (2, 11)]):
        g = torch.Generator().manual_seed(row_seed(5, i, _BLOCK_TAG, 0, d // BLOCK))
        block = torch.randn(BLOCK, 4, 3, generator=g, dtype=torch.float32)
        assert torch.equal(got[row], block[d % BLOCK].double())
    assert got.dtype == torch.float64
    # with per_sample, a sample's last block holds only the draws left: 11 of 12 is row 3
    # of a randn(4, ...) call
    last = randn_blocks(5, [2], [11], (4, 3), torch.float32, torch.device("cpu"), per_sample=12)
    g = torch.Generator().manual_seed(row_seed(5, 2, _BLOCK_TAG, 0, 1))
    assert torch.equal(last[0], torch.randn(4, 4, 3, generator=g)[3])
    with pytest.raises(ValueError, match="per_sample"):
        randn_blocks(5, [2], [12], (1,), torch.float32, torch.device("cpu"), per_sample=12)


def test_rows_do_not_depend_on_how_they_are_asked_for():
    samples, draws = torch.arange(3).repeat_interleave(50), torch.arange(50).repeat(3)
    full = BlockDraws(1, (2, 5, 5), torch.float32, "cpu")(samples, draws)
    for size in (1, 7, 32):
        drawer = BlockDraws(1, (2, 5, 5), torch.float32, "cpu")
        parts = [drawer(samples[i:i + size], draws[i:i + size])
                 for i in range(0, len(samples), size)]
        assert torch.equal(torch.cat(parts), full)
        # in order, every block is drawn once (no re-draw across chunk borders)
        assert drawer.blocks_drawn == 3 * math.ceil(50 / BLOCK)
    backwards = BlockDraws(1, (2, 5, 5), torch.float32, "cpu")(samples.flip(0), draws.flip(0))
    assert torch.equal(backwards, full.flip(0))


def test_streams_samples_and_seeds_are_independent():
    a = randn_blocks(0, [0], [0], (64,), torch.float32, torch.device("cpu"))
    assert not torch.equal(a, randn_blocks(0, [0], [0], (64,), torch.float32,
                                           torch.device("cpu"), stream=1))
    assert not torch.equal(a, randn_blocks(0, [1], [0], (64,), torch.float32,
                                           torch.device("cpu")))
    assert not torch.equal(a, randn_blocks(1, [0], [0], (64,), torch.float32,
                                           torch.device("cpu")))
    with sample_keys([7]):  # row 0 of this block is global sample 7
        assert torch.equal(randn_blocks(0, [0], [0], (64,), torch.float32, torch.device("cpu")),
                           randn_blocks(0, [7], [0], (64,), torch.float32, torch.device("cpu")))


def test_uniform_blocks_and_bad_rows():
    u = BlockDraws(3, (100,), torch.float32, "cpu", kind="uniform")([0, 0], [0, 9])
    assert bool(((u >= 0) & (u < 1)).all())
    with pytest.raises(ValueError, match="kind"):
        BlockDraws(3, (1,), torch.float32, "cpu", kind="cauchy")
    with pytest.raises(ValueError, match="draw indices"):
        BlockDraws(3, (1,), torch.float32, "cpu")([0], [-1])
    with pytest.raises(ValueError, match="one entry per row"):
        BlockDraws(3, (1,), torch.float32, "cpu")([0, 1], [0])


class _CountingDraw:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.mark.parametrize("method,options,calls", [
    ("smoothgrad", {"n_samples": 50}, 4 * math.ceil(50 / BLOCK)),
    ("vargrad", {"n_samples": 20}, 4 * math.ceil(20 / BLOCK)),
    ("neflag", {"n_samples": 21, "steps": 1}, 4 * math.ceil(10 / BLOCK)),
    ("neflag", {"n_samples": 10, "steps": 1, "sampling": "descent"},
     4 * math.ceil(10 / BLOCK)),
])
def test_noise_is_drawn_in_blocks_not_per_row(monkeypatch, photos, method, options, calls):
    """One generator call per block of BLOCK draws of a sample (before: one per row)."""
    counter = _CountingDraw(torch.randn)
    monkeypatch.setattr(torch, "randn", counter)
    fm.explain(tiny_cnn(), photos, method=method, target=1, batch_size=7, **options)
    assert counter.calls == calls


def test_dance_starts_are_drawn_in_blocks(monkeypatch, photos):
    counter = _CountingDraw(torch.rand)
    monkeypatch.setattr(torch, "rand", counter)
    d = fm.DANCE(tiny_cnn(), layer="conv1", patch=4, steps=2, batch_size=5)
    d(photos[:2], target=1)
    decoys = 2 * 16  # 4×4 patches of 4 pixels, ± signs
    assert counter.calls == 2 * math.ceil(decoys / BLOCK)


@pytest.mark.parametrize("method,options", [
    ("smoothgrad", {"n_samples": 10}), ("smoothgrad", {"n_samples": 10, "squared": True}),
    ("vargrad", {"n_samples": 10}),
    ("neflag", {"n_samples": 9, "steps": 2, "score": "logit"}),
    ("neflag", {"n_samples": 4, "steps": 2, "sampling": "descent", "score": "logit"}),
])
def test_same_seed_same_map_bit_for_bit_at_any_batch_size(photos, method, options):
    """Noise, chunking and the per-sample sums are bit-identical at every ``batch_size``.
    oneDNN picks its convolution kernels by batch size (gradients then differ in the last
    bits, ~1e-9 here), so the model runs on PyTorch's native convolutions for this check;
    likewise the softmax backward vectorises across rows (NeFLAG uses the logit here)."""
    model = tiny_cnn()
    with torch.backends.mkldnn.flags(enabled=False):
        maps = [fm.explain(model, photos, method=method, target=2, batch_size=b, seed=4,
                           **options) for b in (1, 7, None)]
    assert torch.equal(maps[0], maps[1]) and torch.equal(maps[0], maps[2])
    other = fm.explain(model, photos, method=method, target=2, seed=5, **options)
    assert not torch.equal(maps[0], other)


def test_smoothgrad_noise_is_the_block_contract(photos):
    sg = fm.SmoothGrad(tiny_cnn(), n_samples=12, stdev=0.5, seed=3)
    noise = sg.all_noise(photos)
    expect = randn_blocks(3, torch.arange(4).repeat_interleave(12), torch.arange(12).repeat(4),
                          tuple(photos.shape[1:]), photos.dtype, photos.device, per_sample=12)
    assert torch.equal(noise, 0.5 * expect.view_as(noise))
