"""SRD cost (issue 5): multiple of one forward+backward, and speed-up over the literal form.

1. torchvision resnet50, vgg16, mobilenet_v3_large, efficientnet_b0, convnext_tiny and
   vit_b_16 (random weights), 224², batch 4, CPU: one SRD call vs one plain
   forward+backward (input gradient) of the same batch, timed alternately.
2. One conv layer (8→16 channels, 3×3, 32×32, batch 2) inside conv–ReLU–GAP–linear: the
   whole SRD call vs the literal per-kernel-tap reference of that single layer
   (tests/methods/srd_reference.py), with the largest difference between the two maps.
3. ``--apop``: the APOP tables of docs/methods/srd.md instead — on the 500 bundled MNIST
   test digits, accuracy (against x's label) of the zoo models with every ReLU pattern and
   max-pool routing frozen from x while a different input goes through: zeros *in the
   model's input space* (:func:`faithmap.methods.srd.zero_input`: the Normalize mean), raw
   zeros (pixel value 0), uniform noise (seed 0), another test digit (a seeded permutation);
   and with each digit's own pattern and every bias scaled by c.

4. ``--conservation``: the largest relative error |Σ_p R_p − logit| / |logit| (predicted
   class) on real bundled images — 4 MNIST test digits, 2 LFW faces (28², grey) for the zoo;
   those in RGB plus 3 sample photos at 32² for torchvision resnet18 / vgg11 / vgg16_bn /
   googlenet with their own random initialisation, and resnet18 with conv1 scaled by 1e-4 —
   in float32 and float64.

    python benchmarks/bench_srd.py [--repeats 2] [--size 224] [--batch 4]
    python benchmarks/bench_srd.py --apop
    python benchmarks/bench_srd.py --conservation
    python benchmarks/bench_srd.py --families   # conservation per torchvision family
    python benchmarks/bench_srd.py --cost-only --repeats 2   # SRD / fwd+bwd (issue 17)
    python benchmarks/bench_srd.py --all-builders   # every torchvision builder at 64²
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

import faithmap as fm
from faithmap.evaluation.throughput import timed

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / "methods"),
               str(Path(__file__).resolve().parents[1] / "tests")]



def forward_backward(model: nn.Module, x: torch.Tensor):
    def run():
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(model(xi)[:, 0].sum(), xi)

    return run


COST_MODELS = ("resnet50", "vgg16", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny",
               "vit_b_16")


def cost_table(args) -> None:
    print(f"| model | SRD (s) | fwd+bwd (s) | SRD / fwd+bwd |  ({args.size}², batch {args.batch}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats})")
    print("|---|---:|---:|---:|")
    for arch in args.models or COST_MODELS:
        torch.manual_seed(0)
        model = torchvision.models.get_model(arch).eval()
        x = torch.rand(args.batch, 3, args.size, args.size)
        srd = fm.SRD(model)
        raw = forward_backward(model, x)
        srd(x, 0), raw()  # warm-up
        t_srd, t_raw = [], []
        for _ in range(args.repeats):
            t_srd.append(timed(lambda m=srd, xb=x: m(xb, 0)))
            t_raw.append(timed(raw))
        s, r = statistics.median(t_srd), statistics.median(t_raw)
        print(f"| {arch} | {s:.2f} | {r:.2f} | {s / r:.2f} |", flush=True)


def literal_table(args) -> None:
    from srd_reference import conv_literal

    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(16, 10)).eval()
    x = torch.rand(2, 8, 32, 32)
    srd = fm.SRD(model)
    maps = srd.layer_maps(x, 0)
    with torch.no_grad():
        z = conv(x)
    t_fast = statistics.median(timed(lambda: srd(x, 0)) for _ in range(args.repeats))
    start = time.perf_counter()
    literal = conv_literal(x, conv.weight.detach(), conv.bias.detach(), 1, 1, z, maps["_1"])
    t_literal = time.perf_counter() - start
    diff = float((literal.view(2, 32, 32) - maps["input"]).abs().max())
    print("\n| one conv layer, 8→16, 32², batch 2 | time (s) |\n|---|---:|")
    print(f"| SRD, whole call (fast form) | {t_fast:.4f} |")
    print(f"| literal per-tap reference, this layer only | {t_literal:.2f} |")
    print(f"| speed-up | {t_literal / t_fast:.0f}× (max |Δ| of the input maps {diff:.1e}) |")


def apop_tables() -> None:
    from faithmap.methods.srd import zero_input

    x, y = fm.data.load("mnist", split="test")
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(x.shape, generator=g)
    other = x[torch.randperm(len(x), generator=g)]
    models = ("mnist_vgg", "mnist_resnet", "mnist_bottleneck", "mnist_allconv",
              "mnist_vgg_robust")

    def acc(logits: torch.Tensor) -> str:
        return f"{(logits.argmax(1) == y).float().mean().item():.3f}"

    print(f"| model | clean accuracy | APOP, zeros in the model's input space | APOP, raw "
          f"zeros | APOP, uniform noise | APOP, another test digit |  (n = {len(x)})")
    print("|---|---:|---:|---:|---:|---:|")
    for name in models:
        m = fm.zoo.load(name)
        with torch.no_grad():
            clean = m(x)
        cols = [fm.apop_predict(m, t, pattern_from=x)
                for t in (zero_input(m, x), torch.zeros_like(x), noise, other)]
        print(f"| {name} | {acc(clean)} | " + " | ".join(acc(c) for c in cols) + " |")
    print("\n| model | c = 1 | c = 0.5 | c = 0 (no biases) |\n|---|---:|---:|---:|")
    for name in models:
        m = fm.zoo.load(name)
        print(f"| {name} | " + " | ".join(acc(fm.apop_predict(m, x, bias_scale=c))
                                          for c in (1.0, 0.5, 0.0)) + " |")


def conservation_table() -> None:
    import warnings

    from real_inputs import real_images

    def error(model: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> float:
        model, x = model.to(dtype), x.to(dtype)
        total = fm.SRD(model)(x).flatten(1).sum(1)
        logit = model(x).max(1).values.detach()
        return float(((total - logit).abs() / logit.abs()).max())

    models: list[tuple[str, nn.Module, torch.Tensor]] = [
        (name, fm.zoo.load(name), real_images(28, 1)) for name in fm.zoo.names()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # googlenet's init notice
        for arch in ("resnet18", "vgg11", "vgg16_bn", "googlenet"):
            torch.manual_seed(0)
            models.append((f"torchvision {arch}", fm.zoo.torchvision(arch, num_classes=10),
                           real_images(32, 3)))
    torch.manual_seed(0)
    scaled = fm.zoo.torchvision("resnet18", num_classes=10)
    with torch.no_grad():
        scaled.model.conv1.weight.mul_(1e-4)
    models.append(("torchvision resnet18, conv1 × 1e-4", scaled, real_images(32, 3)))
    print("| model | max rel. error float32 | max rel. error float64 |\n|---|---:|---:|")
    for name, model, x in models:
        print(f"| {name} | {error(model, x, torch.float32):.1e} | "
              f"{error(model, x, torch.float64):.1e} |", flush=True)


def family_table() -> None:
    """Conservation error per family: the slow test's builders at their smallest accepted
    input (tests/methods/test_srd_families.py), 2 sample photos (1 at 224²)."""
    from test_srd_families import FAMILY_BUILDER, _nonzero_heads, _photos, full_builder

    print("| family | builder | input | max rel. error float32 | float64 | SRD (s, float32) |")
    print("|---|---|---:|---:|---:|---:|")
    for family in sorted(FAMILY_BUILDER):
        name, size = FAMILY_BUILDER[family]
        cols = []
        for dtype in (torch.float32, torch.float64):
            try:
                model, _ = full_builder(family)
                model = _nonzero_heads(model).to(dtype)
                x = _photos(size, 1 if size > 100 else 2).to(dtype)
                start = time.perf_counter()
                attr = fm.SRD(model)(x)
                took = time.perf_counter() - start
                logit = model(x).max(1).values.detach()
                err = ((attr.sum((1, 2, 3)) - logit).abs() / logit.abs()).max().item()
                cols.append(f"{err:.1e}")
                if dtype == torch.float32:
                    t32 = took
            except Exception as exc:  # noqa: BLE001 - the table reports refusals
                cols.append(f"refused: {type(exc).__name__}: {exc}"[:120])
                t32 = float("nan")
        print(f"| {family} | {name} | {size}² | {cols[0]} | {cols[1]} | {t32:.1f} |",
              flush=True)


def all_builders() -> None:
    """``fm.explain(model, x, method="srd")`` on every torchvision classification builder:
    64² (inception_v3 75², maxvit_t 224², ViTs built with image_size=64, vit_h_14 56²), one
    sample photo (astronaut), random weights (random heads where a builder zero-initialises
    one), float32; relative error of the map's sum against the predicted logit."""
    import warnings

    from test_srd_families import _nonzero_heads, _photos

    print("| builder | input | max rel. error | s |\n|---|---:|---:|---:|")
    for name in torchvision.models.list_models(module=torchvision.models):
        start = time.perf_counter()
        kw = {"image_size": 56 if name.startswith("vit_h") else 64} \
            if name.startswith("vit") else {}
        size = {"inception_v3": 75}.get(name, 224 if name.startswith("maxvit")
                                        else kw.get("image_size", 64))
        try:
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = _nonzero_heads(torchvision.models.get_model(name, num_classes=10,
                                                                    **kw))
            x = _photos(size, 1)
            attr = fm.explain(model, x, method="srd")
            logit = model(x).max(1).values.detach()
            err = f"{((attr.sum((1, 2, 3)) - logit).abs() / logit.abs()).max().item():.1e}"
        except Exception as exc:  # noqa: BLE001 - the table reports refusals
            err = f"refused: {type(exc).__name__}: {exc}"[:150]
        print(f"| {name} | {size}² | {err} | {time.perf_counter() - start:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--apop", action="store_true", help="print the APOP tables instead")
    parser.add_argument("--conservation", action="store_true",
                        help="print the conservation errors on real images instead")
    parser.add_argument("--families", action="store_true",
                        help="conservation error per torchvision family instead")
    parser.add_argument("--cost-only", action="store_true", help="only the cost table")
    parser.add_argument("--all-builders", action="store_true",
                        help="fm.explain(..., method='srd') on every torchvision builder")
    parser.add_argument("--models", nargs="*", help=f"cost table models (default {COST_MODELS})")
    args = parser.parse_args()
    if args.families:
        family_table()
        return
    if args.all_builders:
        all_builders()
        return
    if args.cost_only:
        cost_table(args)
        return
    if args.apop:
        apop_tables()
        return
    if args.conservation:
        conservation_table()
        return
    print(f"# torch {torch.__version__}, CPU")
    literal_table(args)
    print()
    cost_table(args)


if __name__ == "__main__":
    main()
