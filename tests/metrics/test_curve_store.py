"""One shared perturbation-curve computation: every curve metric inside ``shared_curves``
runs exactly the raw number of forward rows its curves need, and no step copies to the host."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap import data as fm_data
from faithmap.core.seeding import sample_keys
from faithmap.core.targets import Target
from faithmap.metrics import perturbation
from faithmap.metrics.curve_store import active_store, fingerprints
from model_checks import assert_same_fingerprint, fingerprint
from tiny_models import tiny_cnn

STEP = 28  # 28 pixels per step on 28×28 digits: 29 points per curve


class Tally:
    rows = calls = largest = 0


class Counting(nn.Module):
    """Wraps a model; counts the rows of its gradient-free forward passes and the largest
    batch it was given (in a :class:`Tally` outside the module, which the metrics' model
    guard leaves alone)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.tally = Tally()

    rows = property(lambda self: self.tally.rows)
    calls = property(lambda self: self.tally.calls)
    largest = property(lambda self: self.tally.largest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            self.tally.rows += x.shape[0]
            self.tally.calls += 1
            self.tally.largest = max(self.tally.largest, x.shape[0])
        return self.model(x)


@pytest.fixture(scope="module")
def digits():
    x, y = fm_data.load("mnist", "test")
    x, y = x[:6].contiguous(), y[:6].clone()
    model = tiny_cnn(in_channels=1, classes=10)
    attr = fm.explain(model, x, method="input_x_gradient", target=y)
    return model, x, y, attr


def points(x: torch.Tensor, step: int = STEP) -> int:
    return -(-x.shape[2] * x.shape[3] // step) + 1


def test_the_metric_set_runs_the_raw_forward_count_once(digits):
    """deletion, insertion, insertion−deletion, MoRF/LeRF and the figure curves: three
    distinct curves (deletion = MoRF with the zero substrate, insertion, LeRF), so exactly
    3·N·(T+1) forward rows — insertion−deletion, MoRF and the curves add none — and the
    values equal separate calls outside the store."""
    model, x, y, attr = digits
    counted = Counting(model)
    before = fingerprint(model)
    common = dict(step=STEP, seed=3, batch_size=40)
    flip = dict(features_in_step=STEP, baseline=0.0, seed=3, batch_size=40)
    with fm.metrics.shared_curves() as store:
        d = fm.metrics.deletion(counted, x, attr, y, **common)
        i = fm.metrics.insertion(counted, x, attr, y, **common)
        gap = fm.metrics.insertion_deletion(counted, x, attr, y, **common)
        lm = fm.metrics.lerf_morf_gap(counted, x, attr, y, **flip)
        morf = fm.metrics.pixel_flipping(counted, x, attr, y, order="morf", **flip)
        fractions, curves = fm.metrics.perturbation_curve(counted, x, attr, y, mode="deletion",
                                                          **common)
    raw = 3 * len(x) * points(x)
    assert counted.rows == raw == store.computed_rows
    # reused: insertion−deletion ×2, MoRF ×2 (gap, flipping), the deletion curve itself
    assert store.reused_rows == 5 * len(x) * points(x)
    assert counted.largest <= 40
    assert_same_fingerprint(before, fingerprint(model))
    # the same numbers as separate calls without a store (which run every curve again)
    plain = Counting(model)
    torch.testing.assert_close(gap, fm.metrics.insertion_deletion(plain, x, attr, y, **common))
    torch.testing.assert_close(lm, fm.metrics.lerf_morf_gap(plain, x, attr, y, **flip))
    torch.testing.assert_close(gap, i - d)
    torch.testing.assert_close(morf, d)  # zero substrate either way: the same curve
    torch.testing.assert_close(perturbation.auc(fractions, curves), d)
    assert plain.rows == 4 * len(x) * points(x)


def test_rows_are_matched_by_content_in_any_order_and_subset(digits):
    """A curve asked for a permuted subset of the samples (other tensors, equal values; the
    global sample indices declared as the runner does, so random ties match) is read from
    the store: no forward, the values of the full call's rows."""
    model, x, y, attr = digits
    counted = Counting(model)
    order = [4, 1, 3]
    with fm.metrics.shared_curves():
        _, full = fm.metrics.perturbation_curve(counted, x, attr, y, step=STEP, seed=0)
        rows = counted.rows
        with sample_keys(order):
            _, part = fm.metrics.perturbation_curve(counted, x[order].clone(),
                                                    attr[order].clone(), y[order].clone(),
                                                    step=STEP, seed=0)
    assert counted.rows == rows
    assert torch.equal(part, full[order])
    with sample_keys(order):  # a plain call on the subset agrees to float rounding
        _, direct = fm.metrics.perturbation_curve(model, x[order], attr[order], y[order],
                                                  step=STEP, seed=0)
    torch.testing.assert_close(part, direct)


@pytest.mark.parametrize("change", ["baseline", "step", "target", "maps", "inputs", "score"])
def test_a_different_setting_is_computed_not_reused(digits, change):
    model, x, y, attr = digits
    counted = Counting(model)
    base = dict(step=STEP, baseline="zeros", score="probability", seed=0)
    other = dict(base)
    xs, a, t = x, attr, y
    if change in ("baseline", "step", "score"):
        other[change] = {"baseline": "blur", "step": 56, "score": "logit"}[change]
    elif change == "target":
        t = (y + 1) % 10
    elif change == "maps":
        a = -attr
    else:
        xs = x.clone()
        xs[:, :, 0, 0] += 0.5
    with fm.metrics.shared_curves():
        fm.metrics.deletion(counted, x, attr, y, **base)
        first = counted.rows
        new = fm.metrics.deletion(counted, xs, a, t, **other)
    assert counted.rows - first == len(x) * points(x, other["step"])
    torch.testing.assert_close(new, fm.metrics.deletion(model, xs, a, t, **other))


def test_nothing_is_kept_outside_the_store(digits):
    model, x, y, attr = digits
    counted = Counting(model)
    fm.metrics.deletion(counted, x, attr, y, step=STEP)
    fm.metrics.deletion(counted, x, attr, y, step=STEP)
    assert counted.rows == 2 * len(x) * points(x)
    assert active_store() is None


def test_predicted_targets_are_resolved_once_inside_the_store(digits):
    model, x, _, attr = digits
    counted = Counting(model)
    with fm.metrics.shared_curves():
        fm.metrics.deletion(counted, x, attr, None, step=STEP)
        fm.metrics.insertion(counted, x, attr, None, step=STEP, baseline="zeros")
    assert counted.rows == len(x) + 2 * len(x) * points(x)


def test_fingerprints_do_not_depend_on_the_batch(digits):
    _, x, y, attr = digits
    whole = fingerprints([x, attr, y])
    parts = torch.cat([fingerprints([x[k:k + 1], attr[k:k + 1], y[k:k + 1]])
                       for k in range(len(x))])
    assert torch.equal(whole, parts)
    assert len(set(whole.tolist())) == len(x)


def test_perturbed_batches_make_no_host_copies_per_step(digits, monkeypatch):
    """Host transfers and syncs while scoring a curve (.cpu/.tolist/.item/.numpy, int(),
    bool(), .to(device)) do not grow with the number of chunks — none happens per step —
    and no chunk exceeds batch_size rows."""
    model, x, y, attr = digits
    calls = {"n": 0}

    def moves(args, kwargs) -> bool:
        return any(isinstance(a, (str, torch.device)) for a in (*args, *kwargs.values()))

    for name in ("cpu", "tolist", "item", "numpy", "__int__", "__bool__", "to"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            if _name != "to" or moves(args, kwargs):
                calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    ranks = perturbation.pixel_ranks(attr.sum(1), "morf")
    target = Target(y, len(y))
    sub = torch.zeros_like(x)
    counts = {}
    for batch_size in (8, 64):
        counter = Counting(model)
        calls["n"] = 0
        perturbation.curve_scores(counter, x, ranks, STEP, sub, target, insert=False,
                                  score="probability", batch_size=batch_size)
        counts[batch_size] = (calls["n"], counter.calls)
        assert counter.largest <= batch_size
    (few, many_chunks), (few2, few_chunks) = counts[8], counts[64]
    assert many_chunks > 4 * few_chunks
    assert few == few2, counts
