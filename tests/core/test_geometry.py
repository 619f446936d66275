"""The one box parser and the ball ∩ box projection, on real digits."""

import pytest
import torch

import faithmap as fm
from faithmap.core.errors import InvalidInputError
from faithmap.core.geometry import as_box, check_norm, clip_to_box, norm_of, project, unit_box


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return fm.data.load("digits", split="test")[0][:16].double()


def test_box_from_scalars_and_per_channel_values():
    x = torch.rand(2, 3, 4, 4)
    lo, hi = as_box((0.0, 1.0), x)
    assert lo.shape == hi.shape == (1, 3, 1, 1) and float(lo.sum()) == 0 and float(hi.sum()) == 3
    lo, hi = as_box(([-1.0, -2.0, -3.0], torch.tensor([1.0, 2.0, 3.0])), x)
    assert lo.flatten().tolist() == [-1.0, -2.0, -3.0] and hi.flatten().tolist() == [1.0, 2.0, 3.0]
    assert as_box(None, x) is None


@pytest.mark.parametrize("bounds, match", [
    ((1.0, 0.0), "lo < hi"), ((0.0,), "pair"), (5.0, "pair"), ((0.0, [1.0, 1.0]), "per-channel"),
    ((0.0, float("inf")), "finite")])
def test_bad_bounds_are_named(bounds, match):
    with pytest.raises(ValueError, match=match):
        as_box(bounds, torch.rand(1, 3, 2, 2))


def test_inputs_outside_the_box_name_sample_and_channel(digits):
    x = digits.clone()
    x[3, 0, 2, 2] = 1.5
    with pytest.raises(InvalidInputError, match=r"sample 3, channel 0"):
        as_box((0.0, 1.0), x)
    assert as_box((0.0, 1.0), x, check=False) is not None


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_projection_lands_in_ball_and_box(digits, norm):
    """Invariant: ‖δ‖_p ≤ r and lo ≤ x + δ ≤ hi after projecting a large random step."""
    g = torch.Generator().manual_seed(0)
    delta = 3 * torch.randn(digits.shape, generator=g, dtype=digits.dtype)
    radius = torch.linspace(0.1, 2.0, len(digits), dtype=digits.dtype)
    box = unit_box(digits)
    out = project(delta, digits, radius, norm, box)
    assert bool((norm_of(out, norm) <= radius * (1 + 1e-12)).all())
    assert bool(((digits + out) >= 0).all() and ((digits + out) <= 1).all())


def test_projection_keeps_points_already_inside(digits):
    small = 1e-3 * torch.sign(0.5 - digits)  # moves every pixel towards the box centre
    out = project(small, digits, torch.full((len(digits),), 10.0, dtype=digits.dtype), "l2",
                  unit_box(digits))
    torch.testing.assert_close(out, small, rtol=0, atol=1e-15)  # (x + δ) − x rounds


def test_l2_projection_equals_the_literal_formula(digits):
    """δ · min(1, r/‖δ‖₂), then clamp x + δ into [0, 1] — written out per sample."""
    delta = torch.randn(digits.shape, generator=torch.Generator().manual_seed(1),
                        dtype=digits.dtype)
    r = 0.7
    out = project(delta, digits, torch.full((len(digits),), r, dtype=digits.dtype), "l2",
                  unit_box(digits))
    for i in range(len(digits)):
        d = delta[i] * min(1.0, r / float(delta[i].norm()))
        ref = (digits[i] + d).clamp(0, 1) - digits[i]
        torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-15)


def test_clip_to_box_per_channel():
    x = torch.tensor([[[[-5.0]], [[5.0]]]])
    box = as_box(([-1.0, 0.0], [1.0, 2.0]), torch.zeros(1, 2, 1, 1))
    assert clip_to_box(x, box).flatten().tolist() == [-1.0, 2.0]
    assert clip_to_box(x, None) is x


@pytest.mark.parametrize("alias, name", [("L2", "l2"), (2, "l2"), ("inf", "linf"),
                                         ("Linf", "linf"), ("l∞", "linf")])
def test_norm_aliases(alias, name):
    assert check_norm(alias) == name
    with pytest.raises(ValueError):
        check_norm("l1")
