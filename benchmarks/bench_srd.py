"""SRD cost (issue 5): multiple of one forward+backward, and speed-up over the literal form.

1. torchvision resnet50 and vgg16 (random weights), 224², batch 4, CPU: one SRD call vs one
   plain forward+backward (input gradient) of the same batch, timed alternately.
2. One conv layer (8→16 channels, 3×3, 32×32, batch 2) inside conv–ReLU–GAP–linear: the
   whole SRD call vs the literal per-kernel-tap reference of that single layer
   (tests/methods/srd_reference.py), with the largest difference between the two maps.

    python benchmarks/bench_srd.py [--repeats 2] [--size 224] [--batch 4]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "methods"))



def forward_backward(model: nn.Module, x: torch.Tensor):
    def run():
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(model(xi)[:, 0].sum(), xi)

    return run


def cost_table(args) -> None:
    print(f"| model | SRD (s) | fwd+bwd (s) | SRD / fwd+bwd |  ({args.size}², batch {args.batch}, "
          f"{torch.get_num_threads()} threads)")
    print("|---|---:|---:|---:|")
    for arch in ("resnet50", "vgg16"):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    print(f"# torch {torch.__version__}, CPU")
    literal_table(args)
    print()
    cost_table(args)


if __name__ == "__main__":
    main()
