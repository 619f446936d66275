"""Localisation metrics: hand-computed cases, Quantus/sklearn cross-checks, errors, metadata."""

import numpy as np
import pytest
import torch

from faithmap.core.errors import InvalidInputError
from faithmap.metrics.localisation import (
    energy_pointing_game,
    grid_pointing_game,
    pointing_game,
    pxap,
)

quantus = pytest.importorskip("quantus")


def _box(n=2, h=8, w=8, rows=slice(2, 5), cols=slice(3, 6)):
    m = torch.zeros(n, 1, h, w, dtype=torch.bool)
    m[:, :, rows, cols] = True
    return m


def _random(seed=0, n=6, c=1, h=10, w=10):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, c, h, w, generator=g)
    m = torch.rand(n, 1, h, w, generator=g) > 0.6
    return a, m


def test_map_covering_the_mask_scores_one_and_outside_scores_zero():
    m = _box()
    inside, outside = m.float(), (~m).float()
    for fn in (pointing_game, energy_pointing_game, grid_pointing_game, pxap):
        assert torch.equal(fn(inside, m), torch.ones(2)), fn.__name__
    for fn in (pointing_game, energy_pointing_game, grid_pointing_game):
        assert torch.equal(fn(outside, m), torch.zeros(2)), fn.__name__


def test_energy_pointing_game_hand_value_uses_positive_part_after_channel_sum():
    a = torch.zeros(1, 2, 2, 2)
    a[0, 0] = torch.tensor([[3.0, 1.0], [-5.0, 2.0]])
    a[0, 1] = torch.tensor([[1.0, 0.0], [0.0, -4.0]])  # channel sum: [[4, 1], [-5, -2]]
    m = torch.tensor([[[[True, False], [True, True]]]])
    assert energy_pointing_game(a, m).item() == pytest.approx(4 / 5)
    assert energy_pointing_game(-a.abs(), m).item() == 0.0  # no positive mass


def test_pointing_game_tolerance_radius_in_pixels():
    a = torch.zeros(1, 1, 20, 20)
    a[0, 0, 10, 10] = 1.0
    m = torch.zeros(1, 20, 20, dtype=torch.bool)
    m[0, 10, 13:] = True  # 3 px right of the maximum
    m[0, 12, 12] = True  # √8 ≈ 2.83 px away diagonally
    assert pointing_game(a, m).item() == 0.0
    assert pointing_game(a, m, tolerance=2).item() == 0.0
    m[0, 12, 12] = False
    assert pointing_game(a, m, tolerance=2).item() == 0.0
    assert pointing_game(a, m, tolerance=3).item() == 1.0
    m2 = torch.zeros_like(m)
    m2[0, 12, 12] = True
    assert pointing_game(a, m2, tolerance=3).item() == 1.0  # 2.83 ≤ 3


def test_pointing_game_ties_all_maxima_must_hit_unless_ties_any():
    a = torch.zeros(1, 1, 4, 4)
    a[0, 0, 0, 0] = a[0, 0, 3, 3] = 1.0
    m = torch.zeros(1, 4, 4, dtype=torch.bool)
    m[0, 3, 3] = True
    assert pointing_game(a, m).item() == 0.0  # ties="all": one maximum lies outside
    assert pointing_game(a, m, ties="any").item() == 1.0  # Quantus' rule
    m[0, 0, 0] = True
    assert pointing_game(a, m).item() == 1.0
    with pytest.raises(ValueError, match="ties"):
        pointing_game(a, m, ties="some")


@pytest.fixture(scope="module")
def grid():
    """2×2 grids of bundled MNIST test digits; the mask of one explained cell per image."""
    import faithmap as fm

    bench = fm.data.grid("mnist", n=2, count=12, split="test", seed=0)
    cell = torch.arange(12) % 4
    return bench.images, bench.masks[torch.arange(12), cell][:, None]


def test_all_zero_and_constant_maps_are_never_a_pointing_game_hit(grid):
    x, m = grid
    for a in (torch.zeros_like(x), torch.ones_like(x), torch.full_like(x, -0.3)):
        for ties in ("all", "any"):
            assert torch.equal(pointing_game(a, m, ties=ties), torch.zeros(len(x)))
            assert torch.equal(pointing_game(a, m, ties=ties, tolerance=3), torch.zeros(len(x)))


def test_the_input_itself_is_no_pointing_game_hit_on_grids(grid):
    x, m = grid  # saturated ink in every cell: the maximum is ambiguous
    assert pointing_game(x, m).sum().item() == 0.0


def test_all_zero_and_constant_maps_score_at_most_chance_in_mass_metrics(grid):
    x, m = grid
    area = m.flatten(1).float().mean(1)
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    for fn in (energy_pointing_game, grid_pointing_game):
        assert torch.equal(fn(zeros, m), torch.zeros(len(x)))
        assert torch.allclose(fn(ones, m), area)  # the chance level, never more
        assert torch.equal(fn(-ones, m), torch.zeros(len(x)))


def test_all_zero_and_constant_maps_score_zero_pxap(grid):
    x, m = grid
    for a in (torch.zeros_like(x), torch.ones_like(x), torch.full_like(x, 7.0)):
        assert torch.equal(pxap(a, m), torch.zeros(len(x)))
    assert (pxap(x, m) > 0).all()  # a real map still scores


def test_constant_maps_flags_constant_samples(grid):
    from faithmap.metrics import constant_maps

    x, _ = grid
    a = x.clone()
    a[1] = 0.0
    a[2] = 0.5
    assert constant_maps(a).tolist() == [i in (1, 2) for i in range(len(x))]


def test_channel_reduction_is_a_sum_over_channels():
    a, m = _random(c=3)
    for fn in (pointing_game, energy_pointing_game, grid_pointing_game, pxap):
        assert torch.allclose(fn(a, m), fn(a.sum(1, keepdim=True), m)), fn.__name__
        assert torch.allclose(fn(a, m), fn(a.sum(1), m[:, 0])), fn.__name__


def test_pointing_game_matches_quantus():
    a, m = _random(seed=3, n=8)
    a[0] = a[0].round(decimals=1)  # ties
    ours = pointing_game(a, m, ties="any")
    theirs = quantus.PointingGame(disable_warnings=True, normalise=False, abs=False)(
        model=None, x_batch=a.numpy(), y_batch=np.zeros(8, int), a_batch=a.numpy(),
        s_batch=m.float().numpy())
    assert np.allclose(ours.numpy(), np.asarray(theirs, dtype=float), atol=1e-4)


def test_energy_pointing_game_matches_quantus_relevance_mass_accuracy_on_nonnegative_maps():
    a, m = _random(seed=4, n=8)
    ours = energy_pointing_game(a, m)
    theirs = quantus.RelevanceMassAccuracy(disable_warnings=True, normalise=False, abs=False)(
        model=None, x_batch=a.numpy(), y_batch=np.zeros(8, int), a_batch=a.numpy(),
        s_batch=m.float().numpy())
    assert np.allclose(ours.numpy(), np.asarray(theirs, dtype=float), atol=1e-4)
    # Signed maps: Quantus uses raw values (Σ_M a / Σ a); we use the positive part.
    signed = a - 0.5
    raw = (signed * m).flatten(1).sum(1) / signed.flatten(1).sum(1)
    pos = signed.clamp_min(0)
    expected = (pos * m).flatten(1).sum(1) / pos.flatten(1).sum(1)
    assert torch.allclose(energy_pointing_game(signed, m), expected)
    assert not torch.allclose(energy_pointing_game(signed, m), raw)


def test_grid_pointing_game_cell_masks_and_cell_index_agree():
    a, _ = _random(seed=5, n=4, h=8, w=8)
    cells = torch.zeros(4, 4, 8, 8, dtype=torch.bool)
    for k, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        cells[:, k, r:r + 4, c:c + 4] = True
    which = torch.tensor([0, 1, 2, 3])
    by_index = grid_pointing_game(a, cells, cell=which)
    by_mask = grid_pointing_game(a, cells[torch.arange(4), which][:, None])
    assert torch.allclose(by_index, by_mask)
    expected = (a[:, 0] * cells[torch.arange(4), which]).flatten(1).sum(1) / a.flatten(1).sum(1)
    assert torch.allclose(by_index, expected)
    one_cell = torch.zeros(1, 1, 8, 8)
    one_cell[0, 0, 4:, 4:] = 2.0
    one_cell[0, 0, 0, 0] = 2.0
    assert grid_pointing_game(one_cell, cells[:1], cell=torch.tensor([3])).item() == pytest.approx(
        32 / 34)
    with pytest.raises(InvalidInputError, match="cell="):
        grid_pointing_game(a, cells)
    with pytest.raises(InvalidInputError, match="cell"):
        grid_pointing_game(a, cells, cell=torch.tensor([0, 1, 2, 4]))


def test_pxap_matches_sklearn_average_precision():
    from sklearn.metrics import average_precision_score

    a, m = _random(seed=6, n=5)
    a[1] = a[1].round(decimals=1)  # tie groups
    a[2] = a[2] * 7 - 3  # min-max normalisation makes the scale irrelevant
    ours = pxap(a, m)
    ref = [average_precision_score(m[i].flatten().numpy(), a[i].flatten().numpy())
           for i in range(5)]
    assert np.allclose(ours.numpy(), ref, atol=1e-6)
    constant = torch.full((1, 1, 4, 4), 0.3)
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :1] = True
    assert pxap(constant, mask).item() == 0.0  # no ranking (sklearn would give 0.25)


def test_bad_inputs_raise_clear_errors():
    a, m = _random()
    with pytest.raises(InvalidInputError, match="do not match"):
        pointing_game(a, m[:, :, :5])
    with pytest.raises(InvalidInputError, match="do not match"):
        energy_pointing_game(a, m[:3])
    empty = m.clone()
    empty[2] = False
    for fn in (pointing_game, energy_pointing_game, grid_pointing_game, pxap):
        with pytest.raises(InvalidInputError, match=r"empty .*\[2\]"):
            fn(a, empty)
    with pytest.raises(InvalidInputError, match="0 and 1"):
        pxap(a, m.float() * 0.5)
    nan = a.clone()
    nan[1, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        energy_pointing_game(nan, m)
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(a, m, tolerance=-1)
    with pytest.raises(InvalidInputError):
        pointing_game(a, m.numpy())


def test_metadata():
    for fn in (pointing_game, energy_pointing_game, grid_pointing_game, pxap):
        assert fn.higher_is_better is True
        assert fn.category == "localisation"
        assert fn.kind == "mask"
