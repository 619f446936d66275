"""DANCE cost and solve quality (issues 7, 16): the default solver against a 200-step solve.

For each model: the default DANCE (early-stopped solver: at most 150 Adam steps, a decoy
stops 40 evaluations after its last gain of > 0.1 %) and a *reference* solve at the same
layer tolerance (``steps=200, patience=None``: every decoy runs 200 steps). Reported: mean
|δ| of the decoys (over patch entries and decoys) of both and their ratio (the issue-16
target: ≥ 0.9), solver passes per image (truncated forward+backward rows, measured: early-
stopped decoys stop counting), seconds per image and the feasible fraction.

1. Zoo MNIST models (28², 1 channel), default settings (3×3 patches at stride 3 → 100
   masks, 200 decoys, Saliency base), the first ``--n`` test digits.
2. torchvision resnet18 (random weights), 224² (the first bundled sample photo):
   32×32 patches at stride 32, ``max_masks`` (default 8) kept, the traced default layer.

Seconds depend on the machine's load; the ratio and the pass counts do not.

    python benchmarks/bench_dance.py [--n 1] [--max-masks 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

import faithmap as fm  # noqa: E402

REFERENCE = dict(steps=200, patience=None)


def solve(model: nn.Module, x: torch.Tensor, **options) -> tuple[dict, float]:
    d = fm.DANCE(model, **options)
    t = time.perf_counter()
    d(x)
    return d.metadata, (time.perf_counter() - t) / len(x)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def row(label: str, model: nn.Module, x: torch.Tensor, **options) -> None:
    fm.DANCE(model, **{**options, "max_masks": 2, "steps": 2})(x[:1])  # warm-up (small)
    md0, t0 = solve(model, x, **options)
    md1, t1 = solve(model, x, **options, **REFERENCE)
    d0, d1 = mean(md0["mean_abs_delta"]), mean(md1["mean_abs_delta"])
    print(f"| {label} | {md0['layer']} | {md0['n_masks']} | {d0:.4f} | {d1:.4f} | "
          f"{d0 / d1:.3f} | {mean(md0['decoy_passes']):.0f} | {mean(md1['decoy_passes']):.0f} "
          f"| {t0:.1f} | {t1:.1f} | {mean(md0['feasible_fraction']):.2f} |", flush=True)


def photo_224() -> torch.Tensor:
    try:
        photos = fm.data.sample_images(size=224)
    except (OSError, ValueError):  # no sample photo installed: noise
        return torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    return next(iter(photos.values()))[None]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--max-masks", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    print(f"DANCE default vs reference ({REFERENCE}), {torch.get_num_threads()} threads, "
          f"{args.n} image(s)\n")
    print("| model | layer ℓ | masks | mean \\|δ\\| default | mean \\|δ\\| reference | ratio | "
          "passes / image default | passes / image reference | s / image default | "
          "s / image reference | feasible |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    images, _ = fm.data.load("mnist", "test")
    x = images[: args.n]
    for name in ("mnist_vgg", "mnist_resnet"):
        row(f"{name} 28²", fm.zoo.load(name), x)
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().eval()
    row(f"resnet18 224², patch 32, stride 32, max_masks {args.max_masks}", resnet,
        photo_224(), patch=32, stride=32, max_masks=args.max_masks)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
