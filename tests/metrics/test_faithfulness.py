"""Faithfulness metrics: hand-computed values, literal references, Quantus cross-checks,
seeding, batch-size invariance, model safety, input errors and metadata."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap import data as fm_data
from faithmap.core.errors import InvalidInputError, ModelModeError, TargetError
from faithmap.metrics import faithfulness as ff
from faithmap.metrics.perturbation import linear_impute, pixel_ranks
from model_checks import assert_same_fingerprint, fingerprint

MODEL_METRICS = {
    "deletion": {},
    "insertion": {},
    "insertion_deletion": {},
    "pixel_flipping": {"features_in_step": 16},
    "lerf_morf_gap": {"features_in_step": 16},
    "road": {"percentages": (0.2, 0.6)},
    "fidelity": {},
    "faithfulness_correlation": {"n_samples": 6, "subset_size": 20},
}
HIGHER_IS_BETTER = {"deletion": False, "insertion": True, "insertion_deletion": True,
                    "pixel_flipping": False, "lerf_morf_gap": True, "road": False,
                    "fidelity": False, "faithfulness_correlation": True}


@pytest.fixture(scope="module")
def mnist():
    """A real small model: an MLP trained for 3 epochs on the bundled MNIST digits (~2 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = fm_data.load("mnist", "train")
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        for idx in torch.randperm(len(x), generator=g).split(100):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    torch.set_num_threads(threads)
    xt, yt = fm_data.load("mnist", "test")
    return model.eval(), xt[::25].contiguous(), yt[::25].clone()


def linear_model(w: torch.Tensor, two_class: bool = False) -> nn.Module:
    """f(x) = w·x (one logit), or logits (w·x, 0) so that p_0 = sigmoid(w·x)."""
    lin = nn.Linear(w.numel(), 2 if two_class else 1, bias=False)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0] = w.flatten()
    return nn.Sequential(nn.Flatten(), lin).eval()


# ---------------------------------------------------------------- hand-computed values

X22 = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
W22 = torch.tensor([[1.0, -1.0], [2.0, 0.5]])  # contributions w⊙x = [1, -2, 6, 2]


def test_deletion_insertion_exact_on_2x2():
    model, a = linear_model(W22), (W22 * X22)
    fractions, curve = ff.perturbation_curve(model, X22, a, 0, step=1, score="logit")
    assert torch.allclose(fractions, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert torch.allclose(curve, torch.tensor([[7.0, 1.0, -1.0, -2.0, 0.0]]))
    # trapezoid: 0.25·((7+1)/2 + (1−1)/2 + (−1−2)/2 + (−2+0)/2) = 0.375
    assert ff.deletion(model, X22, a, 0, step=1, score="logit").item() == pytest.approx(0.375)
    # insertion onto zeros: 0, 6, 8, 9, 7 → 0.25·(3 + 7 + 8.5 + 8) = 6.625
    ins = ff.insertion(model, X22, a, 0, step=1, baseline="zeros", score="logit")
    assert ins.item() == pytest.approx(6.625)
    # step 3: 0, 3, 4 pixels removed → 7, −2, 0 at x = 0, 0.75, 1
    d3 = ff.deletion(model, X22, a, 0, step=3, score="logit")
    assert d3.item() == pytest.approx(0.75 * (7 - 2) / 2 + 0.25 * (-2 + 0) / 2)


def test_probability_score_exact_on_2x2():
    model = linear_model(W22, two_class=True)
    d = ff.deletion(model, X22, W22 * X22, 0, step=2)
    s = [1 / (1 + math.exp(-v)) for v in (7.0, -1.0, 0.0)]
    assert d.item() == pytest.approx(0.5 * ((s[0] + s[1]) / 2 + (s[1] + s[2]) / 2), abs=1e-6)


def test_w_times_x_is_the_best_deletion_order_of_all_orderings():
    model, a = linear_model(W22), W22 * X22
    best = ff.deletion(model, X22, a, 0, step=1, score="logit").item()
    scores = []
    for perm in itertools.permutations(range(4)):
        ranked = torch.tensor(perm, dtype=torch.float32).view(1, 1, 2, 2)
        scores.append(ff.deletion(model, X22, -ranked, 0, step=1, score="logit").item())
    assert best == pytest.approx(min(scores))
    assert sum(s > best + 1e-6 for s in scores) == 23  # the optimum is unique


def test_ties_break_by_row_major_index():
    ranks = pixel_ranks(torch.tensor([[[1.0, 3.0], [3.0, 1.0]]]))
    assert ranks.tolist() == [[2, 0, 1, 3]]
    assert pixel_ranks(torch.tensor([[[1.0, 3.0], [3.0, 1.0]]]), "lerf").tolist() == [[0, 2, 3, 1]]


def test_substrates():
    x = torch.rand(2, 3, 8, 8)
    model, a = linear_model(torch.ones(3 * 64)), torch.rand(2, 3, 8, 8)
    _, c = ff.perturbation_curve(model, x, a, 0, mode="deletion", baseline="mean", step=8,
                                 score="logit")
    assert torch.allclose(c[:, -1], x.sum(dim=(1, 2, 3)), atol=1e-4)  # the mean image sums alike
    _, c = ff.perturbation_curve(model, x, a, 0, mode="insertion", baseline="blur", step=8,
                                 score="logit")
    blurred = nn.functional.conv2d(x.view(6, 1, 8, 8), _gauss(), padding=5).sum(dim=(1, 2, 3))
    assert torch.allclose(c[:, 0], blurred.view(2, 3).sum(1), atol=1e-4)
    assert torch.allclose(c[:, -1], x.sum(dim=(1, 2, 3)), atol=1e-4)


def _gauss() -> torch.Tensor:
    t = torch.arange(11.0) - 5
    g = torch.exp(-(t**2) / 50)
    return (torch.outer(g, g) / g.sum() ** 2).view(1, 1, 11, 11)


# ---------------------------------------------------------------- literal references


def _literal_deletion_curve(model, x, a, target, step, insert):
    """One image at a time, one step at a time (a slow, obviously correct reference)."""
    n, c, h, w = x.shape
    curves = []
    for i in range(n):
        m = a[i].sum(0).flatten()
        order = sorted(range(h * w), key=lambda p: (-float(m[p]), p))
        row = []
        for k in range(math.ceil(h * w / step) + 1):
            keep = torch.zeros(h * w, dtype=torch.bool)
            keep[order[: min(k * step, h * w)]] = True
            if not insert:
                keep = ~keep
            img = x[i] * keep.view(1, h, w)
            with torch.no_grad():
                row.append(model(img[None]).softmax(1)[0, target[i]].item())
        curves.append(row)
    return torch.tensor(curves)


@pytest.mark.parametrize("insert", [False, True])
def test_curve_matches_literal_reference(cnn, x_small, insert):
    a = torch.randn(x_small.shape, generator=torch.Generator().manual_seed(3))
    target = [0, 1, 2, 3]
    _, ours = ff.perturbation_curve(cnn, x_small, a, target, step=7, baseline="zeros",
                                    mode="insertion" if insert else "deletion")
    ref = _literal_deletion_curve(cnn, x_small, a, target, 7, insert)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_fidelity_matches_formula(cnn, x_small):
    a = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        p = cnn(x_small).softmax(1)
        c = p.argmax(1)
        e = a - a.mean(dim=(1, 2, 3), keepdim=True)
        q = cnn(e * x_small).softmax(1)
    ref = -torch.log(q[range(4), c] / p[range(4), c])
    assert torch.allclose(ff.fidelity(cnn, x_small, a, normalise="none"), ref, atol=1e-5)
    same = ff.fidelity(cnn, x_small, a.expand(4, 3, 16, 16).contiguous(), normalise="none")
    assert torch.allclose(same, ref, atol=1e-5)  # a 1-channel map is broadcast over channels


def test_fidelity_clamps_log_of_zero():
    model = linear_model(torch.tensor([1000.0, 0, 0, 0]), two_class=True)
    x = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    a = torch.tensor([[[[-1.0, 1.0], [1.0, 1.0]]]])  # E − mean E flips the sign of pixel 0
    sf = ff.fidelity(model, x, a, 0, eps=1e-12, normalise="none")
    assert torch.isfinite(sf).all() and sf.item() == pytest.approx(-math.log(1e-12), rel=1e-4)


@pytest.fixture(scope="module")
def grid_allconv():
    """The zoo model mnist_allconv on 2×2 grids of bundled MNIST test digits (predicted class)."""
    model = fm.zoo.load("mnist_allconv").eval()
    x = fm_data.grid("mnist", n=2, count=8, split="test", seed=0).images
    with torch.no_grad():
        pred = model(x).argmax(1)
    return model, x, pred


def test_fidelity_is_scale_invariant(grid_allconv):
    model, x, pred = grid_allconv
    for method in ("input_x_gradient", "integrated_gradients"):
        a = fm.explain(model, x, method, target=pred)
        sf = ff.fidelity(model, x, a, pred)
        assert torch.allclose(ff.fidelity(model, x, 100 * a, pred), sf, atol=1e-5), method
        assert torch.allclose(ff.fidelity(model, x, 1e-3 * a, pred), sf, atol=1e-5), method
    raw = ff.fidelity(model, x, a, pred, normalise="none")  # wave 1: scale-dependent
    assert not torch.allclose(ff.fidelity(model, x, 100 * a, pred, normalise="none"), raw)
    signed = ff.fidelity(model, x, a, pred, normalise="max_abs")
    assert torch.allclose(ff.fidelity(model, x, 100 * a, pred, normalise="max_abs"), signed,
                          atol=1e-5)


def test_fidelity_of_zero_and_constant_maps_is_the_blank_level_and_loses(grid_allconv):
    model, x, pred = grid_allconv
    with torch.no_grad():
        p = model(x).softmax(1)[range(len(x)), pred]
        p0 = model(torch.zeros_like(x)).softmax(1)[range(len(x)), pred]
    blank = p.log() - p0.log()
    for a in (torch.zeros_like(x), torch.ones_like(x), torch.full_like(x, -2.0)):
        assert torch.allclose(ff.fidelity(model, x, a, pred), blank, atol=1e-5)
    a = fm.explain(model, x, "input_x_gradient", target=pred)
    assert ff.fidelity(model, x, a, pred).mean() < blank.mean() - 0.5  # a real map wins


def test_fidelity_maps_dance_post_processing_by_hand():
    a = torch.zeros(1, 2, 5, 4)
    a[0, 0, 0, :] = torch.tensor([1.0, -4.0, 2.0, 0.0])
    a[0, 1, 0, 0] = -3.0
    m = ff.fidelity_maps(a)  # |a| → max over channels → clip at q95 → / q95
    flat = a.abs().amax(1).flatten()
    q = float(np.quantile(flat.numpy(), 0.95))
    expected = (flat.clamp_max(q) / q).view(1, 1, 5, 4)
    assert torch.allclose(m, expected)
    assert m.max() == 1.0 and m.shape == (1, 1, 5, 4)
    one_hot = torch.zeros(1, 1, 5, 4)
    one_hot[0, 0, 2, 2] = -0.5  # < 5% non-zero pixels: q95 = 0, scaled by the maximum
    assert ff.fidelity_maps(one_hot).sum().item() == 1.0
    assert torch.equal(ff.fidelity_maps(torch.zeros(1, 1, 5, 4)), torch.zeros(1, 1, 5, 4))
    with pytest.raises(ValueError, match="normalise"):
        ff.fidelity_maps(a, "l2")


def test_constant_map_scores_like_random_not_like_a_raster_scan_in_road(grid_allconv):
    """Wave 1 broke ties in row-major order: ROAD removed whole rows of digits for a
    constant map and scored it far better than a random map (issue 15)."""
    model, x, pred = grid_allconv
    opts = dict(percentages=(0.3, 0.6))
    zeros = ff.road(model, x, torch.zeros_like(x), pred, **opts)
    rand = ff.road(model, x, torch.rand(x.shape, generator=torch.Generator().manual_seed(0)),
                   pred, **opts)
    assert zeros.mean() > rand.mean() - 0.05  # lower is better: not better than random
    raster = ff.road(model, x, torch.zeros_like(x), pred, ties="index", **opts)
    assert raster.mean() < zeros.mean() - 0.1  # the trap the default avoids


def test_random_ties_are_seeded_per_sample_and_shared_by_morf_and_lerf(cnn, x_small):
    a = torch.zeros(4, 1, 16, 16)
    a[:, :, :4] = 1.0  # one tied block above a tied background
    d = ff.deletion(cnn, x_small, a, step=16)
    assert torch.equal(d, ff.deletion(cnn, x_small, a, step=16, seed=0))
    assert not torch.equal(d, ff.deletion(cnn, x_small, a, step=16, seed=1))
    from faithmap.core.seeding import sample_keys

    with sample_keys([2]):  # keys follow the global sample, not the batch position
        assert torch.allclose(ff.deletion(cnn, x_small[2:3], a[2:3], step=16), d[2:3])
    ranks = ff.pixel_ranks(a[:, 0], "morf", ff.tie_keys(4, 256, "random", 0, a.device))
    assert (ranks.view(4, 16, 16)[:, :4] < 64).all()  # ties never cross attribution levels
    const = torch.ones(4, 1, 16, 16)
    gap = ff.lerf_morf_gap(cnn, x_small, const, features_in_step=16)
    assert torch.equal(gap, torch.zeros(4))
    with pytest.raises(ValueError, match="ties"):
        ff.deletion(cnn, x_small, a, ties="first")


def test_faithfulness_correlation_matches_literal_reference(cnn, x_small):
    a = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    subsets = torch.stack([torch.randperm(256, generator=torch.Generator().manual_seed(i))
                           .view(8, 32)[:, :10] for i in range(4)])
    ours = ff.faithfulness_correlation(cnn, x_small, a, [0, 1, 2, 3], subsets=subsets)
    for i in range(4):
        drops, sums = [], []
        with torch.no_grad():
            f0 = cnn(x_small[i : i + 1])[0, i].item()
            for s in subsets[i]:
                img = x_small[i].clone().flatten(1)
                img[:, s] = 0.0
                drops.append(f0 - cnn(img.view(1, 3, 16, 16))[0, i].item())
                sums.append(a[i].sum(0).flatten()[s].sum().item())
        assert ours[i].item() == pytest.approx(np.corrcoef(sums, drops)[0, 1], abs=1e-5)


# ---------------------------------------------------------------- ROAD imputation


def _dense_impute(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Build and solve the ROAD system densely: Σ_q w_pq (v_p − v_q) = 0 for removed p."""
    h, w = removed.shape
    weights = {(-1, -1): 1 / 12, (-1, 0): 1 / 6, (-1, 1): 1 / 12, (0, -1): 1 / 6,
               (0, 1): 1 / 6, (1, -1): 1 / 12, (1, 0): 1 / 6, (1, 1): 1 / 12}
    unknown = [(i, j) for i in range(h) for j in range(w) if removed[i, j]]
    col = {p: k for k, p in enumerate(unknown)}
    out = x.clone()
    for ch in range(x.shape[0]):
        a = torch.zeros(len(unknown), len(unknown), dtype=torch.float64)
        b = torch.zeros(len(unknown), dtype=torch.float64)
        for (i, j), k in col.items():
            for (di, dj), wt in weights.items():
                q = (i + di, j + dj)
                if 0 <= q[0] < h and 0 <= q[1] < w:
                    a[k, k] += wt
                    if q in col:
                        a[k, col[q]] -= wt
                    else:
                        b[k] += wt * x[ch, q[0], q[1]]
        v = torch.linalg.solve(a, b)
        for (i, j), k in col.items():
            out[ch, i, j] = v[k]
    return out


def test_linear_imputation_matches_dense_solve():
    g = torch.Generator().manual_seed(6)
    x = torch.rand(3, 2, 5, 6, generator=g, dtype=torch.float64)
    removed = torch.rand(3, 1, 5, 6, generator=g) < torch.tensor([0.3, 0.6, 0.95]).view(3, 1, 1, 1)
    removed[2, 0, 0, 0] = False  # keep one pixel so the system is non-singular
    ours = linear_impute(x, removed, tol=1e-13)
    for r in range(3):
        assert torch.allclose(ours[r], _dense_impute(x[r], removed[r, 0]), atol=1e-10)
    assert torch.equal(ours[~removed.expand_as(x)], x[~removed.expand_as(x)])


def test_linear_imputation_agrees_with_quantus():
    _quantus()
    from quantus.functions.perturb_func import noisy_linear_imputation

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 7, 9, generator=g, dtype=torch.float64)
    idx = torch.randperm(63, generator=g)[:30]
    theirs = noisy_linear_imputation(arr=x.numpy(), indices=idx.numpy(), noise=0.0)
    removed = torch.zeros(63, dtype=torch.bool)
    removed[idx] = True
    ours = linear_impute(x[None], removed.view(1, 1, 7, 9), tol=1e-13)[0]
    assert np.abs(ours.numpy() - theirs).max() < 1e-10


def test_road_seeded_and_noise_free_reference(cnn, x_small):
    a = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(7))
    r1 = ff.road(cnn, x_small, a, seed=1)
    assert torch.equal(r1, ff.road(cnn, x_small, a, seed=1))
    assert not torch.equal(r1, ff.road(cnn, x_small, a, seed=2))
    pct = (0.25, 0.5)
    ours = ff.road(cnn, x_small, a, [0, 1, 2, 3], percentages=pct, noise=0.0, tol=1e-7)
    ranks = pixel_ranks(a[:, 0])
    ref = torch.zeros(4)
    for p in pct:
        removed = (ranks < round(p * 256)).view(4, 1, 16, 16)
        imputed = torch.stack([_dense_impute(x_small[i].double(), removed[i, 0])
                               for i in range(4)]).float()
        with torch.no_grad():
            ref += cnn(imputed).softmax(1)[range(4), [0, 1, 2, 3]] / len(pct)
    assert torch.allclose(ours, ref, atol=1e-4)


# ---------------------------------------------------------------- Quantus cross-checks


def _quantus():
    quantus = pytest.importorskip("quantus")
    warnings.filterwarnings("ignore", module="quantus")
    return quantus


def test_pixel_flipping_agrees_with_quantus(mnist):
    quantus = _quantus()
    model, x, y = mnist
    x, y = x[:6], y[:6]
    a = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(8))
    pf = quantus.PixelFlipping(features_in_step=28, normalise=False, perturb_baseline=0.0,
                               disable_warnings=True)
    q_curves = np.asarray(pf(model=model, x_batch=x.numpy(), y_batch=y.numpy(),
                             a_batch=a.numpy(), device="cpu", softmax=True))
    _, ours = ff._flipping_curve(model, x, a, y, "morf", 28, 0.0, "probability", "sum", 64)
    assert np.abs(ours[:, 1:].numpy() - q_curves).max() < 1e-4  # Quantus omits the 0 point
    # Quantus AUC: trapezoid with dx = 1 over its T points; ours: over [0, 1] from point 0.
    q_auc = np.trapezoid(q_curves, dx=1, axis=1)
    t = q_curves.shape[1]
    ours_auc = ff.pixel_flipping(model, x, a, y, features_in_step=28)
    converted = ours_auc.numpy() * t - (ours[:, 0] + ours[:, 1]).numpy() / 2
    assert np.abs(converted - q_auc).max() < 1e-4


def test_faithfulness_correlation_agrees_with_quantus(mnist, monkeypatch):
    quantus = _quantus()
    model, x, y = mnist
    x, y = x[:6], y[:6]
    a = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(9))
    drawn, choice = [], np.random.choice

    def recording_choice(*args, **kwargs):
        drawn.append(choice(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(np.random, "choice", recording_choice)
    fc = quantus.FaithfulnessCorrelation(nr_runs=20, subset_size=50, normalise=False,
                                         perturb_baseline=0.0, return_aggregate=False,
                                         disable_warnings=True)
    q = np.asarray(fc(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(),
                      device="cpu"))
    subsets = torch.as_tensor(np.stack(drawn)).view(20, 6, 50).permute(1, 0, 2)  # run-major
    ours = ff.faithfulness_correlation(model, x, a, y, subsets=subsets)
    assert np.abs(ours.numpy() - q).max() < 1e-4


# ---------------------------------------------------------------- documented properties


def test_lerf_morf_gap_is_zero_for_random_maps_but_not_deletion(mnist):
    model, x, y = mnist
    n = x.shape[0]
    random_map = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(10))
    ixg = fm.explain(model, x, method="input_x_gradient", target=y)
    kw = {"features_in_step": 8, "batch_size": 1024}
    gap_random = ff.lerf_morf_gap(model, x, random_map, y, **kw)
    gap_ixg = ff.lerf_morf_gap(model, x, ixg, y, **kw)
    del_random = ff.deletion(model, x, random_map, y, batch_size=1024)
    with torch.no_grad():
        p0 = model(x).softmax(1)[range(n), y]
    # a random map "earns" a deletion AUC well below the clean probability ...
    assert del_random.mean() < 0.8 * p0.mean()
    # ... but its gap is zero within noise, and a real explanation's is large
    se = gap_random.std() / n**0.5
    assert abs(gap_random.mean()) < max(3 * se, 0.01) and abs(gap_random.mean()) < 0.06
    assert gap_ixg.mean() > 0.5


def test_insertion_beats_deletion_for_a_real_explanation(mnist):
    model, x, y = mnist
    ixg = fm.explain(model, x[:10], method="input_x_gradient", target=y[:10])
    flipped = ff.insertion_deletion(model, x[:10], -ixg, y[:10])
    assert (ff.insertion_deletion(model, x[:10], ixg, y[:10]) > flipped).all()


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize("name", list(MODEL_METRICS))
def test_batch_size_invariance_and_determinism(name, cnn, x_small):
    fn = getattr(ff, name)
    a = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(11))
    opts = MODEL_METRICS[name]
    full = fn(cnn, x_small, a, batch_size=None, **opts)
    assert full.shape == (4,) and full.dtype == x_small.dtype
    assert torch.allclose(fn(cnn, x_small, a, batch_size=5, **opts), full, atol=1e-5)
    assert torch.equal(fn(cnn, x_small, a, batch_size=5, **opts),
                       fn(cnn, x_small, a, batch_size=5, **opts))
    first = fn(cnn, x_small[:1], a[:1], batch_size=3, **opts)
    assert torch.allclose(first, full[:1], atol=1e-5)  # a sample's score ignores the others


@pytest.mark.parametrize("name", list(MODEL_METRICS))
def test_metadata_and_registry(name):
    fn = getattr(ff, name)
    assert fn.category == "faithfulness" and fn.kind == "model"
    assert fn.higher_is_better is HIGHER_IS_BETTER[name]
    assert fm.metrics.get_metric(name) is fn
    assert name in ff.__all__


@pytest.mark.parametrize("name", list(MODEL_METRICS))
def test_model_unchanged_and_errors(name, cnn, x_small):
    fn, opts = getattr(ff, name), MODEL_METRICS[name]
    a = torch.rand(4, 3, 16, 16)
    before = fingerprint(cnn)
    fn(cnn, x_small, a, **opts)
    with pytest.raises(TargetError):
        fn(cnn, x_small, a, 5, **opts)  # the model has 5 classes
    with pytest.raises(TargetError):
        fn(cnn, x_small, a, [0, 1], **opts)
    with pytest.raises(InvalidInputError):
        fn(cnn, x_small, torch.full_like(a, math.nan), **opts)
    with pytest.raises(InvalidInputError):
        fn(cnn, x_small, a[:, :, :8], **opts)
    with pytest.raises(InvalidInputError):
        fn(cnn, x_small[0], a, **opts)
    with pytest.raises(InvalidInputError):
        fn(cnn, torch.full_like(x_small, math.inf), a, **opts)
    assert_same_fingerprint(before, fingerprint(cnn))
    cnn.train()
    with pytest.raises(ModelModeError):
        fn(cnn, x_small, a, **opts)
    cnn.eval()


def test_bad_options(cnn, x_small):
    a = torch.rand(4, 1, 16, 16)
    with pytest.raises(ValueError, match="baseline"):
        ff.deletion(cnn, x_small, a, baseline="noise")
    with pytest.raises(ValueError, match="step"):
        ff.deletion(cnn, x_small, a, step=0)
    with pytest.raises(ValueError, match="mode"):
        ff.perturbation_curve(cnn, x_small, a, mode="both")
    with pytest.raises(ValueError, match="order"):
        ff.pixel_flipping(cnn, x_small, a, order="random")
    with pytest.raises(ValueError, match="score"):
        ff.insertion(cnn, x_small, a, score="prob")
    with pytest.raises(ValueError, match="percentages"):
        ff.road(cnn, x_small, a, percentages=(0.5, 1.0))
    with pytest.raises(ValueError, match="subset_size"):
        ff.faithfulness_correlation(cnn, x_small, a, subset_size=1000)
    with pytest.raises(ValueError, match="batch_size"):
        ff.deletion(cnn, x_small, a, batch_size=0)


def test_default_step_gives_about_224_steps(cnn):
    x = torch.rand(1, 1, 28, 28)
    model = linear_model(torch.ones(784))
    fractions, _ = ff.perturbation_curve(model, x, x, 0, score="logit")
    assert fractions.numel() == 197 and fractions[0] == 0 and fractions[-1] == 1


# ---------------------------------------------------------------- vocabulary and prelude

OLD_NAMES = [  # (function, old options, the same options under their new names)
    ("perturbation_curve", {"targets": [0, 1, 2, 3], "substrate": "mean"},
     {"target": [0, 1, 2, 3], "baseline": "mean"}),
    ("deletion", {"targets": 1, "substrate": "blur"}, {"target": 1, "baseline": "blur"}),
    ("insertion", {"targets": 2, "substrate": "zeros"}, {"target": 2, "baseline": "zeros"}),
    ("insertion_deletion",
     {"targets": 0, "insertion_substrate": "mean", "deletion_substrate": 0.5},
     {"target": 0, "insertion_baseline": "mean", "deletion_baseline": 0.5}),
    ("pixel_flipping", {"targets": 3, "features_in_step": 16},
     {"target": 3, "features_in_step": 16}),
    ("lerf_morf_gap", {"targets": 3, "features_in_step": 16},
     {"target": 3, "features_in_step": 16}),
    ("road", {"targets": 1, "percentages": (0.3,)}, {"target": 1, "percentages": (0.3,)}),
    ("fidelity", {"targets": 4}, {"target": 4}),
    ("faithfulness_correlation", {"targets": 2, "n_runs": 5, "subset_size": 20},
     {"target": 2, "n_samples": 5, "subset_size": 20}),
]


@pytest.mark.parametrize(("name", "old", "new"), OLD_NAMES, ids=[o[0] for o in OLD_NAMES])
def test_old_option_names_warn_and_give_identical_scores(name, old, new, cnn, x_small):
    fn = getattr(ff, name)
    a = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names do not warn
        expected = fn(cnn, x_small, a, **new)
    with pytest.warns(DeprecationWarning) as caught:
        got = fn(cnn, x_small, a, **old)
    renamed = {k for k in old if k not in new}
    assert {str(w.message).split("'")[1] for w in caught} == renamed
    for e, g in zip(expected if isinstance(expected, tuple) else (expected,),
                    got if isinstance(got, tuple) else (got,)):
        assert torch.equal(e, g)
    positional = fn(cnn, x_small, a, new["target"],
                    **{k: v for k, v in new.items() if k != "target"})
    assert torch.equal(positional if not isinstance(positional, tuple) else positional[1],
                       expected if not isinstance(expected, tuple) else expected[1])
    with pytest.raises(TypeError, match="deprecated name"):
        fn(cnn, x_small, a, target=0, targets=0)


def test_signatures_use_the_vocabulary():
    import inspect

    for name in [*MODEL_METRICS, "perturbation_curve"]:
        params = list(inspect.signature(getattr(ff, name)).parameters)
        assert params[:4] == ["model", "inputs", "attributions", "target"], name
        assert not {"targets", "substrate", "n_runs", "epsilon", "input_range"} & set(params)
    assert "eps" in inspect.signature(ff.fidelity).parameters  # a stabiliser of the log


@pytest.mark.parametrize("name", list(MODEL_METRICS))
def test_inputs_go_through_the_prelude(name, cnn, x_small):
    """core.prelude: model type, device check, and inputs cast to the model's dtype."""
    import copy

    fn, opts = getattr(ff, name), MODEL_METRICS[name]
    a = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(13))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fn(lambda t: t, x_small, a, **opts)
    on_meta = copy.deepcopy(cnn).to("meta")
    with pytest.raises(InvalidInputError, match="parameters are on meta"):
        fn(on_meta, x_small, a, **opts)
    with pytest.raises(InvalidInputError, match="inputs must be 4-D"):
        fn(cnn, x_small[0], a, **opts)
    with pytest.raises(TargetError, match="entries but the batch has 4"):
        fn(cnn, x_small, a, [0, 1], **opts)
    as_float32 = fn(cnn, x_small, a, **opts)
    as_float64 = fn(cnn, x_small.double(), a, **opts)  # cast to the model's float32
    assert as_float64.dtype == torch.float32 and torch.equal(as_float32, as_float64)
