"""DANCE cost (issue 7): seconds per image and its multiple of one forward+backward.

1. Zoo MNIST models (28², 1 channel), default settings (3×3 patches at stride 3 → 100
   masks, 200 decoys, 10 Adam steps × 2 rounds, Saliency base): seconds per image, and
   the ratio to one plain forward+backward (input gradient) of the 200 decoy rows.
2. torchvision resnet18 (random weights), 224²: 32×32 patches at stride 32, ``max_masks``
   (default 8) of the 49 kept evenly spaced, the default layer (``layer4``), default solver.

Ratios are timed side by side in one run, so they survive a busy machine; absolute seconds
do not. ``passes`` counts forward+backward rows: decoy solver (truncated at ℓ) + base.

    python benchmarks/bench_dance.py [--n 1] [--max-masks 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

import faithmap as fm  # noqa: E402
from faithmap.evaluation.throughput import timed  # noqa: E402


def fwd_bwd(model: nn.Module, x: torch.Tensor) -> float:
    """Seconds for one forward+backward (input gradient) of the batch ``x``."""
    def run():
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(model(xi)[:, 0].sum(), xi)

    return timed(run)


def row(label: str, model: nn.Module, x: torch.Tensor, **options) -> None:
    fm.DANCE(model, **{**options, "max_masks": 2})(x[:1])  # warm-up (small)
    d = fm.DANCE(model, **options)
    t = timed(lambda: d(x)) / len(x)
    md = d.metadata
    rows = x[:1].expand(md["n_decoys"], *x.shape[1:]).contiguous()
    t_rows = statistics.median(fwd_bwd(model, rows) for _ in range(2))
    t_one = statistics.median(fwd_bwd(model, x[:1]) for _ in range(3))
    passes = md["decoy_passes"] + md["n_decoys"]
    print(f"| {label} | {md['layer']} | {md['n_masks']} | {t:.2f} | {t / t_one:.0f} | "
          f"{t / t_rows:.1f} | {passes} | {sum(md['feasible_fraction']) / len(x):.2f} |",
          flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--max-masks", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    print(f"DANCE cost, {torch.get_num_threads()} threads, {args.n} images\n")
    print("| model | layer ℓ | masks | s / image | ÷ fwd+bwd (1 image) | ÷ fwd+bwd "
          "(all decoys, one batch) | passes / image | feasible |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    images, _ = fm.data.load("mnist", "test")
    x = images[: args.n]
    for name in ("mnist_vgg", "mnist_resnet"):
        row(f"{name} 28²", fm.zoo.load(name), x)
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().eval()
    x224 = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    row(f"resnet18 224², patch 32 stride 32, max_masks {args.max_masks}", resnet, x224,
        patch=32, stride=32, max_masks=args.max_masks)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
