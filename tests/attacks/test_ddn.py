"""find_boundary(engine="ddn"): Decoupled Direction and Norm (Rony et al., CVPR 2019) +
bisection; and the cross-checks of both minimum-norm engines against adv-lib (test-only,
skipped where adv_lib is absent)."""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import pytest
import torch
from test_fmn import HI, LO, RowCounter, cnn, digits, two_channel
from torch import nn

import faithmap as fm
from faithmap.attacks import find_boundary
from faithmap.attacks.ddn import ddn
from faithmap.core.geometry import as_box


def test_found_rows_are_on_the_other_side_inside_the_per_channel_box():
    model, x = cnn(), two_channel(8)
    pred = model(x).argmax(1)
    target = torch.where(torch.arange(8) % 2 == 0, pred, (pred + 1) % 5)  # mixed batch
    b = find_boundary(model, x, target, engine="ddn", bounds=(LO, HI))
    assert b.found.all() and b.attack == ["ddn"] * 8 and b.settings["engine"] == "ddn"
    labels = model(b.points).argmax(1)
    assert torch.equal(labels, b.labels)
    assert (labels[::2] != pred[::2]).all() and (labels[1::2] == target[1::2]).all()
    assert b.targeted.tolist() == [False, True] * 4
    assert (b.points >= LO.view(1, 2, 1, 1)).all() and (b.points <= HI.view(1, 2, 1, 1)).all()
    torch.testing.assert_close(b.distances, (b.points - x).flatten(1).norm(dim=1))
    assert b.forward_backward <= 100 * 8 and (b.distances > 0).all()
    back = x + (1 - 2.0 ** -9) * (b.points - x)  # on the boundary (bisection)
    again = model(back).argmax(1)
    assert (again[::2] == pred[::2]).all() and (again[1::2] != target[1::2]).all()


def test_linear_model_distance_is_close_to_the_analytic_minimum():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2)).eval()
    x = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    w = model[1].weight.detach()
    exact = (model(x) @ torch.tensor([1.0, -1.0])).abs() / (w[0] - w[1]).norm()
    for target in (None, 1 - model(x).argmax(1)):  # leave the class / reach the other one
        b = find_boundary(model, x, target, engine="ddn", bounds=None)
        assert b.found.all()
        assert (b.distances >= exact * (1 - 1e-4)).all()
        assert (b.distances <= exact * 1.01).all(), b.distances / exact


def test_early_stop_is_per_row_and_the_counts_are_the_rows_through_the_model():
    model, x = fm.zoo.load("mnist_resnet"), digits(6)
    counter = RowCounter(model)
    y = model(x).argmax(1)
    counter.rows = 0
    res = ddn(model, x, y, steps=60, box=as_box((0, 1), x), patience=5)
    assert counter.rows == res.forward_backward + res.forward
    assert res.found.all() and res.forward_backward == int(res.steps.sum())
    assert len(set(res.steps.tolist())) > 1 and res.forward_backward < 60 * 6
    counter.rows = 0
    full = ddn(model, x, y, steps=60, box=as_box((0, 1), x), early_stop=False)
    assert counter.rows == 60 * 6 + 6 and full.steps.tolist() == [60] * 6
    counter.rows = 0
    b = find_boundary(model, x, ddn_steps=60, ddn_patience=5)  # DDN options select DDN
    assert b.settings["engine"] == "ddn" and counter.rows == b.forward_backward + b.forward
    assert b.forward_backward == res.forward_backward
    assert (b.distances <= res.distances * (1 + 1e-6)).all()  # the bisection only shortens
    counter.handle.remove()


def test_start_warm_starts_from_the_boundary_towards_it():
    model, x = fm.zoo.load("mnist_resnet"), digits(8)
    pred = model(x).argmax(1)
    other = torch.roll(x, 1, 0)
    adv = model(other).argmax(1) != pred
    assert adv.sum() >= 4
    b = find_boundary(model, x, engine="ddn", start=other)
    assert b.found.all() and b.settings["start"]
    far = (other - x).flatten(1).norm(dim=1)
    assert (b.distances[adv] < far[adv]).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"ddn_steps": 0}, "ddn_steps"),
    ({"ddn_patience": 0}, "ddn_patience"),
    ({"ddn_gamma": 1.0}, "ddn_gamma"),
    ({"ddn_alpha": -1.0}, "ddn_alpha"),
    ({"ddn_init_norm": 0.0}, "ddn_init_norm"),
    ({"engine": "ddn", "fmn_steps": 5}, "fmn_steps is an option of engine='fmn'"),
])
def test_bad_options_raise(kwargs, match):
    model, x = cnn(), two_channel(2)
    with pytest.raises(ValueError, match=match):
        find_boundary(model, x, bounds=(LO, HI), **kwargs)


# --- adv-lib (Rony's library; the FMN and DDN authors' reference implementations) ---------


def adv_lib_attack(monkeypatch, filename: str, name: str):
    """adv-lib's attack ``name`` loaded from its file, or skip. adv-lib's ``attacks``
    package imports visdom for its loggers, which the attacks do not need: a stub logger
    module stands in for it while the file loads."""
    adv_lib = pytest.importorskip("adv_lib")
    path = Path(adv_lib.__path__[0]) / "attacks" / filename
    spec = importlib.util.spec_from_file_location(f"_adv_lib_{name}", path)
    if spec is None or spec.loader is None or not path.exists():
        pytest.skip(f"adv-lib has no attacks/{filename}")
    stub = types.ModuleType("adv_lib.utils.visdom_logger")
    stub.VisdomLogger = object
    monkeypatch.setitem(sys.modules, "adv_lib.utils.visdom_logger", stub)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def their_distances(model, x, y, adv):
    with torch.no_grad():
        ok = model(adv).argmax(1) != y
    return torch.where(ok, (adv - x).flatten(1).norm(dim=1), math.inf), ok


def assert_no_worse(ours, theirs, ok, tol=1.01):
    """Ours finds at least as many, the median (unfound = ∞) is no larger, and where both
    find a point ours is as close up to ``tol`` (median ratio)."""
    assert ours.found_rate >= float(ok.float().mean())
    assert float(ours.distances.median()) <= float(theirs.median()) * tol, (ours.distances,
                                                                             theirs)
    both = ok & ours.found
    assert float((ours.distances[both] / theirs[both]).median()) <= tol


@pytest.mark.parametrize("engine, filename, name, kwargs", [
    ("ddn", "decoupled_direction_norm.py", "ddn", {"levels": None}),
    ("fmn", "fast_minimum_norm.py", "fmn", {"norm": 2}),
])
def test_no_worse_than_adv_lib_on_a_zoo_model_fast(monkeypatch, engine, filename, name, kwargs):
    theirs_attack = adv_lib_attack(monkeypatch, filename, name)
    model, x = fm.zoo.load("mnist_resnet"), digits(8)
    y = model(x).argmax(1)
    theirs, ok = their_distances(model, x, y, theirs_attack(model, x, y, steps=100, **kwargs))
    ours = find_boundary(model, x, engine=engine)
    assert ours.forward_backward <= 100 * len(x)
    assert_no_worse(ours, theirs, ok)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist_vgg", "mnist_resnet", "mnist_allconv"])
def test_ddn_no_worse_than_adv_lib_ddn_on_zoo_models(monkeypatch, name):
    theirs_ddn = adv_lib_attack(monkeypatch, "decoupled_direction_norm.py", "ddn")
    model, x = fm.zoo.load(name), digits(32)
    y = model(x).argmax(1)
    theirs, ok = their_distances(model, x, y, theirs_ddn(model, x, y, steps=100, levels=None))
    ours = find_boundary(model, x, engine="ddn")
    assert ours.found.all() and ours.forward_backward <= 100 * len(x)
    assert_no_worse(ours, theirs, ok)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist_allconv", "mnist_resnet", "mnist_vgg_robust"])
def test_default_engine_median_no_worse_than_the_sweep(name):
    model, x = fm.zoo.load(name), digits(16)
    sweep = find_boundary(model, x, engine="sweep", batch_size=512)
    ours = find_boundary(model, x, batch_size=512)
    assert ours.settings["engine"] == "fmn" and ours.found.all()
    assert ours.forward_backward <= 100 * len(x)
    assert float(ours.distances.median()) <= float(sweep.distances.median())
