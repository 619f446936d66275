"""DANCE (issue 7): decoys, layer constraint, aggregations vs a literal loop, bases, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap.core.layers import capture_output, find_module
from faithmap.methods.dance import default_layer
from model_checks import assert_same_fingerprint, fingerprint


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 4),
    ).eval()


def images(n: int = 2, c: int = 1, side: int = 8, seed: int = 3) -> torch.Tensor:
    return torch.rand(n, c, side, side, generator=torch.Generator().manual_seed(seed))


def dance(model: nn.Module, **kw) -> fm.DANCE:
    opts = dict(layer="4", patch=2, stride=2, steps=12, rounds=1, radius=0.05)
    opts.update(kw)
    return fm.DANCE(model, **opts)


def patch_masks(corners: list[tuple[int, int]], p: int, h: int, w: int) -> torch.Tensor:
    out = torch.zeros(len(corners), h, w, dtype=torch.bool)
    for k, (i, j) in enumerate(corners):
        out[k, i:i + p, j:j + p] = True
    return out


def corners_of(h: int, w: int, p: int, stride: int) -> list[tuple[int, int]]:
    from faithmap.methods.dance.decoys import patch_grid

    return [tuple(c) for c in patch_grid(h, w, p, stride, None).tolist()]


def test_decoys_stay_in_patch_and_box_and_satisfy_the_layer_constraint():
    model, x = small_cnn(), images()
    d = dance(model)
    xt = d.decoys(x)
    m = len(corners_of(8, 8, 2, 2))
    assert xt.shape == (2, 2 * m, 1, 8, 8)
    masks = patch_masks(corners_of(8, 8, 2, 2), 2, 8, 8).repeat_interleave(2, 0)
    outside = ~masks[None, :, None].expand_as(xt)
    assert torch.equal(xt[outside], x[:, None].expand_as(xt)[outside])
    assert float(xt.min()) >= 0 and float(xt.max()) <= 1
    moved = (xt - x[:, None]).flatten(2).abs().amax(2) > 0
    assert moved.float().mean() > 0.3  # non-trivial decoys exist, so the check below bites
    _, module = find_module(model, "4")
    for i in range(2):  # the constraint, measured on a full forward pass (not the solver's)
        with torch.no_grad(), capture_output(module) as cap:
            model(torch.cat([x[i:i + 1], xt[i]]))
        f = cap.output.flatten(1)
        eps = 0.05 * float(f[0].abs().max())
        assert float((f[1:] - f[0]).abs().amax()) <= eps * (1 + 1e-5)
    sign = torch.tensor([1.0, -1.0]).repeat(len(masks) // 2).view(1, -1, 1, 1, 1)
    gain = ((xt - x[:, None]) * sign).clamp_min(0).flatten(2).sum(2)
    assert bool((gain[moved] > 0).all())  # every kept decoy moves its patch in its sign


def test_metadata_counts_and_fallbacks():
    model, x = small_cnn(), images()
    d = dance(model)
    d(x)
    md = d.metadata
    assert md["n_masks"] == 16 and md["n_decoys"] == 32 and md["layer"] == "4"
    for f, k in zip(md["feasible_fraction"], md["n_fallback"]):
        assert f == pytest.approx(1 - k / 32) and 0 < f <= 1
    assert all(dev <= e * (1 + 1e-5) for dev, e in zip(md["layer_deviation"], md["radius"]))
    assert all(v > 0 for v in md["mean_abs_delta"])
    tight = dance(model, radius=1e-7, steps=2, rounds=1)  # (almost) nothing is feasible
    tight(x)
    assert max(tight.metadata["feasible_fraction"]) < max(md["feasible_fraction"])
    full = dance(model, patience=None)  # no early stop: (steps + 1)·rounds + 1 per decoy
    full(x)
    assert full.metadata["decoy_passes"] == [32 * (13 + 1)] * 2
    early = dance(model, patience=3)  # rows stop 3 evaluations after their last gain
    early(x)
    assert all(32 * 5 <= p < 32 * 14 for p in early.metadata["decoy_passes"])


def test_range_is_nonnegative_and_zero_on_a_linear_model_with_saliency():
    model, x = small_cnn(), images()
    for agg in ("range", "per_mask"):
        z = dance(model, aggregation=agg)(x)
        assert z.shape == x.shape and bool((z >= 0).all()) and float(z.max()) > 0
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    d = fm.DANCE(linear, "saliency", layer="1", patch=2, steps=6, radius=0.05)
    z = d(x)
    assert max(d.metadata["feasible_fraction"]) > 0.3  # decoys really moved
    assert torch.equal(z, torch.zeros_like(z))


def literal(model, x, xt, base, agg, corners, p):
    """Slow reference: E on each decoy one by one, aggregated with explicit loops."""
    n, per = xt.shape[:2]
    out = torch.zeros_like(x)
    for i in range(n):
        t = int(model(x[i:i + 1]).argmax())
        maps = [base(xt[i, j:j + 1], t)[0] for j in range(per)]
        if agg == "range":
            out[i] = torch.stack(maps).amax(0) - torch.stack(maps).amin(0)
        elif agg == "mean":
            out[i] = sum(maps) / per
        else:
            for r in range(x.shape[2]):
                for c in range(x.shape[3]):
                    vals = [(maps[2 * k] - maps[2 * k + 1])[:, r, c].abs()
                            for k, (a, b) in enumerate(corners)
                            if a <= r < a + p and b <= c < b + p]
                    out[i, :, r, c] = sum(vals) / len(vals)
    return out


@pytest.mark.parametrize("agg", ["range", "per_mask", "mean"])
def test_aggregations_match_a_literal_loop(agg):
    model, x = small_cnn(), images(side=8)
    d = dance(model, aggregation=agg, patch=3, stride=2, batch_size=6)  # overlapping patches
    z = d(x)
    base = fm.Saliency(model)
    ref = literal(model, x, d.decoys(x), base, agg, corners_of(8, 8, 3, 2), 3)
    torch.testing.assert_close(z, ref, rtol=1e-5, atol=1e-6)


def test_bases_by_name_instance_class_and_captum():
    captum_attr = pytest.importorskip("captum.attr")
    model, x = small_cnn(), images(n=1)
    by_name = dance(model, base="integrated_gradients", base_options={"n_steps": 4})(x)
    instance = dance(model, base=fm.IntegratedGradients(model, n_steps=4))(x)
    torch.testing.assert_close(by_name, instance)
    by_class = dance(model, base=fm.IntegratedGradients, base_options={"n_steps": 4})(x)
    torch.testing.assert_close(by_name, by_class)
    ours = dance(model, base=fm.Saliency(model, abs=False))(x)
    via_captum = dance(model, base=fm.from_captum("Saliency", model, abs=False))(x)
    torch.testing.assert_close(ours, via_captum)
    cls = dance(model, base=captum_attr.InputXGradient)(x)
    torch.testing.assert_close(cls, dance(model, base="input_x_gradient")(x))
    sg = fm.explain(model, x, "dance", base="smoothgrad", base_options={"n_samples": 2},
                    layer="4", patch=4, steps=2, rounds=1)
    assert sg.shape == x.shape and bool(torch.isfinite(sg).all())


def test_seeded_and_model_unchanged():
    model, x = small_cnn(), images()
    before = fingerprint(model)
    a = dance(model, seed=5)(x)
    b = dance(model, seed=5)(x)
    c = dance(model, seed=5, batch_size=5)(x)
    assert_same_fingerprint(before, fingerprint(model))
    assert torch.equal(a, b)
    torch.testing.assert_close(a, c)
    xa, xb = dance(model, seed=5).decoys(x), dance(model, seed=6).decoys(x)
    assert not torch.equal(xa, xb)


def test_constant_decoys_ablation_and_display():
    model, x = small_cnn(), images()
    d = dance(model, decoys="constant", size=0.2)
    xt = d.decoys(x)
    step = (xt - x[:, None]).abs().flatten(2).amax(2)
    assert torch.allclose(step[step > 0].max(), torch.tensor(0.2))
    d(x)
    assert d.metadata["decoy_passes"] == [32, 32]  # only the measured layer deviation
    z = dance(model)(x)
    disp = fm.dance_display(z)
    assert disp.shape == (2, 1, 8, 8) and float(disp.min()) >= 0
    assert torch.allclose(disp.flatten(1).amax(1), torch.ones(2))
    q = torch.quantile(z.abs().amax(1).flatten(1), 0.95, dim=1)
    top = z.abs().amax(1).flatten(1) >= q[:, None]
    assert bool((disp.flatten(1)[top] == 1).all())


def test_default_layers_and_bad_inputs():
    for name, layer in [("mnist_vgg", "features.9"), ("mnist_resnet", "layers"),
                        ("mnist_allconv", "features.11")]:
        assert default_layer(fm.zoo.load(name)) == layer
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 2))
    assert default_layer(plain, images(1)) == "1"
    with pytest.raises(ValueError, match="traces"):
        default_layer(plain)
    model, x = small_cnn(), images()
    with pytest.raises(ValueError, match="patch"):
        fm.DANCE(model, patch=0)
    with pytest.raises(ValueError, match="'nope'"):
        fm.DANCE(model, layer="nope")
    with pytest.raises(ValueError, match="aggregation"):
        fm.DANCE(model, layer="4", aggregation="max")
    with pytest.raises(ValueError, match="own base"):
        fm.DANCE(model, "dance", layer="4")
    with pytest.raises(fm.InvalidInputError, match="patch=9"):
        fm.DANCE(model, layer="4", patch=9)(x)
    with pytest.raises(fm.InvalidInputError, match="outside bounds"):
        fm.DANCE(model, layer="4")(x + 2)
    with pytest.raises(ValueError, match="bounds"):
        fm.DANCE(model, layer="4", bounds=(1.0, 0.0))(x)
    with pytest.raises(ValueError, match="no module of the model returns a spatial"):
        fm.DANCE(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)))(x)
    with pytest.raises(ValueError, match="per_mask"):
        fm.DANCE(model, layer="4", decoys="mean_pixel", aggregation="per_mask")
    with pytest.raises(ValueError, match="patience"):
        fm.DANCE(model, layer="4", patience=0)


def test_old_option_names_warn_and_give_identical_results():
    model, x = small_cnn(), images()
    new = fm.DANCE(model, layer="4", patch=2, stride=2, steps=4, rounds=1, radius=0.03,
                   relative_radius=False, bounds=(-0.5, 1.5))
    with pytest.warns(DeprecationWarning) as caught:
        old = fm.DANCE(model, layer="4", patch=2, stride=2, steps=4, rounds=1, epsilon=0.03,
                       relative_epsilon=False, input_range=(-0.5, 1.5))
    assert sorted(str(w.message) for w in caught) == [
        "DANCE: 'epsilon' is deprecated, use 'radius'",
        "DANCE: 'input_range' is deprecated, use 'bounds'",
        "DANCE: 'relative_epsilon' is deprecated, use 'relative_radius'"]
    assert torch.equal(old(x), new(x))
    assert torch.equal(old.decoys(x), new.decoys(x))
    assert old.metadata["radius"] == new.metadata["radius"] == pytest.approx([0.03, 0.03])
    with pytest.raises(TypeError, match="'radius' only"):
        fm.DANCE(model, layer="4", radius=0.1, epsilon=0.1)
    assert fm.DANCE(model, layer="4").batch_size == fm.core.batching.DEFAULT_BATCH_SIZE


def test_per_channel_bounds():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3)).eval()
    x = images(c=3)
    opts = dict(layer="1", patch=2, stride=2, steps=6, rounds=2, radius=0.2)
    scalar = fm.DANCE(model, bounds=(0.0, 1.0), **opts)
    channels = fm.DANCE(model, bounds=([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]), **opts)
    assert torch.equal(scalar.decoys(x), channels.decoys(x))  # scalars keep their numbers
    lo, hi = torch.tensor([0.0, -0.2, 0.1]), torch.tensor([1.0, 0.9, 0.7])
    xb = torch.minimum(torch.maximum(x, lo.view(1, 3, 1, 1)), hi.view(1, 3, 1, 1))
    for kind in ("optimised", "constant"):
        xt = fm.DANCE(model, bounds=(lo, hi), decoys=kind, size=0.5, **opts).decoys(xb)
        lo5, hi5 = lo.view(1, 1, 3, 1, 1), hi.view(1, 1, 3, 1, 1)
        assert bool((xt >= lo5 - 1e-6).all() and (xt <= hi5 + 1e-6).all())  # x + (lo − x)
        at_hi = ((xt - hi5).abs() < 1e-6) & (xb[:, None] < hi5 - 1e-3)
        assert bool(at_hi[:, :, 2].any())  # channel 2 is pushed up to its own bound 0.7
        assert not bool(((xt - 1.0).abs() < 1e-6)[:, :, 2].any())  # never to the scalar 1
    outside = xb.clone()
    outside[1, 2, 0, 0] = 0.75  # inside [0, 1], outside channel 2's [0.1, 0.7]
    with pytest.raises(fm.InvalidInputError, match="sample 1, channel 2"):
        fm.DANCE(model, bounds=(lo, hi), **opts)(outside)


def test_spatial_is_fixed_at_construction():
    model, x = small_cnn(), images()
    pixel = dance(model, steps=2, rounds=1)
    spatial = dance(model, base="gradcam", base_options={"layer": "2"}, steps=2, rounds=1)
    assert pixel.spatial is False and spatial.spatial is True  # before any call
    for _ in range(2):
        assert pixel(x).shape == x.shape and spatial(x).shape == (2, 1, 8, 8)
        assert pixel.spatial is False and spatial.spatial is True


def test_decoys_go_through_the_prelude():
    model, x = small_cnn(), images()
    d = dance(model, steps=2, rounds=1)
    before = fingerprint(model)
    with pytest.raises(fm.InvalidInputError, match="NaN"):
        d.decoys(torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match="out of range"):
        d.decoys(x, target=10_000)
    with pytest.raises(ValueError, match="2 samples"):
        d.decoys(x, target=[0, 1, 2])
    assert_same_fingerprint(before, fingerprint(model))
    assert d.decoys(x.double()).dtype == torch.float64  # cast to the model dtype and back


class Wrapped(nn.Module):
    """No declared layer; the whole network (convs, pool and head) is one top-level child,
    and a ReLU module is reused twice in the forward pass."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.inner = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
            nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        self.shared = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.shared(self.shared(x - 0.5) + 0.1))


def test_default_layer_is_traced_on_a_model_without_a_declared_layer():
    from faithmap.methods.dance import traced_layer

    model, x = Wrapped().eval(), images(2)
    assert default_layer(model, x) == "inner.3"  # the last spatial map, not the logits
    d = fm.DANCE(model, patch=4, stride=4, steps=3)
    assert d.layer is None  # traced on the first input
    d(x)
    assert d.metadata["layer"] == "inner.3"
    _, module = find_module(model, "inner.3")
    xt = d.decoys(x).flatten(0, 1)
    with torch.no_grad(), capture_output(module) as cap:  # the constraint is on that map
        model(torch.cat([x, xt]))
    f = cap.output.flatten(1)
    eps = 1e-2 * f[:2].abs().amax(1)
    dev = (f[2:].view(2, -1, f.shape[1]) - f[:2, None]).abs().amax(2).amax(1)
    assert bool((dev <= eps * (1 + 1e-5)).all())
    # the zoo models' declared layers are what the rule finds (same map)
    for name in ("mnist_vgg", "mnist_resnet"):
        zoo = fm.zoo.load(name)
        digits = fm.data.load("mnist", "test")[0][:1]
        traced = traced_layer(zoo, digits)
        outs = []
        for layer in (traced, default_layer(zoo)):
            with torch.no_grad(), capture_output(find_module(zoo, layer)[1]) as cap:
                zoo(digits)
            outs.append(cap.output)
        torch.testing.assert_close(outs[0], outs[1])


def test_default_layer_on_torchvision_resnet18():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert default_layer(resnet, x) == "layer4"  # 2×2 map; avgpool is 1×1
    assert default_layer(resnet, x[..., :32, :32]) == "layer3"  # layer4 is 1×1 at 32²
    d = fm.DANCE(resnet, patch=16, stride=16, max_masks=2, steps=2)
    z = d(x)
    assert d.metadata["layer"] == "layer4" and z.shape == x.shape


def test_mean_pixel_decoys_are_the_patch_set_to_the_mean_pixel():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3)).eval()
    x = images(c=3)
    d = fm.DANCE(model, layer="1", patch=2, stride=2, decoys="mean_pixel")
    xt = d.decoys(x)
    corners = corners_of(8, 8, 2, 2)
    masks = patch_masks(corners, 2, 8, 8)
    mean = x.mean((2, 3))
    for k in range(len(corners)):
        for j in (2 * k, 2 * k + 1):
            expect = torch.where(masks[k], mean[:, :, None, None], x)
            torch.testing.assert_close(xt[:, j], expect)
    z = d(x)
    assert d.metadata["decoy_passes"] == [2 * len(corners)] * 2
    assert z.shape == x.shape and bool((z >= 0).all()) and float(z.max()) > 0


def test_signed_gradient_base_is_the_papers_and_differs_from_abs():
    model, x = small_cnn(), images()
    signed = dance(model, base_options={"abs": False})
    z = signed(x)
    ref = literal(model, x, signed.decoys(x), fm.Saliency(model, abs=False), "range",
                  corners_of(8, 8, 2, 2), 2)
    torch.testing.assert_close(z, ref, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(z, dance(model)(x))


def solve_ratio(name: str, n: int, max_masks: int | None, patch: int = 3) -> float:
    """Mean |δ| of the default solve over that of a 200-step solve without early stopping,
    at the same layer tolerance, on ``n`` real test digits."""
    model = fm.zoo.load(name)
    x = fm.data.load("mnist", "test")[0][:n]
    default = fm.DANCE(model, patch=patch, max_masks=max_masks)
    reference = fm.DANCE(model, patch=patch, max_masks=max_masks, steps=200, patience=None)
    d0 = (default.decoys(x) - x[:, None]).abs().mean()
    d1 = (reference.decoys(x) - x[:, None]).abs().mean()
    return float(d0 / d1)


def test_default_decoys_reach_90_percent_of_a_200_step_solve_fast():
    # wave 1's defaults (steps=10, rounds=2) reached 0.69 of their own 200-step solve here
    assert solve_ratio("mnist_vgg", 2, 10, patch=4) >= 0.9


@pytest.mark.slow
def test_default_decoys_reach_90_percent_of_a_200_step_solve_on_digits():
    assert solve_ratio("mnist_vgg", 3, 16) >= 0.9


def test_max_masks_spreads_the_patches_over_the_image():
    """A kept subset covers the image evenly: every pixel of a 224² photo lies within one
    sub-grid cell (56 px for 4×4 of the 14×14 grid) of a kept patch centre. Every k-th patch
    in raster order (the old rule) lines up on a diagonal, 150+ px from the far corners —
    the map then shows where the masks were, not the model."""
    from faithmap.methods.dance.decoys import patch_grid

    corners = patch_grid(224, 224, 16, 16, 16)
    assert len(corners) == 16
    centres = corners.float() + 7.5
    pixels = torch.stack(torch.meshgrid(torch.arange(224.0), torch.arange(224.0),
                                        indexing="ij"), -1).view(-1, 1, 2)
    farthest = (pixels - centres[None]).norm(dim=-1).min(dim=1).values.max()
    assert farthest <= 56
    assert len(corners[:, 0].unique()) == len(corners[:, 1].unique()) == 4  # a 4×4 grid
    assert len(patch_grid(28, 28, 4, 4, 10)) <= 10
    assert len(patch_grid(224, 224, 16, 16, None)) == 196
