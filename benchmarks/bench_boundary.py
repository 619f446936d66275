"""Boundary search + BIG cost (issue 6): passes used vs the reference pipeline, wall time,
found rate and mean distance.

Models: zoo ``mnist_vgg`` (1×28×28 MNIST test digits) and torchvision resnet18 (random
weights, 3×S×S uniform noise; S = 64 by default to keep the run under ~3 minutes on a
shared CPU — pass ``--size 224`` on a quiet machine), batch 16 each. The reference pipeline
(github.com/zifanw/boundary) spends 7 radii × 40 PGD steps + 100 CW steps = 380
forward+backward passes per sample; ours is counted row by row (one row = one sample
through the model). Wall times are also given in units of one forward+backward pass of
the same batch, timed in the same run, so they survive machine contention. The search time
is BIG's first call (search + 50 IG steps) minus its second call (a cache hit: IG only).

    python benchmarks/bench_boundary.py [--size 64] [--batch 16] [--compare-early-stop]

``--engines`` (issue 18) instead compares the search engines of ``find_boundary`` side by
side — ``engine="sweep"`` (PGD sweep + CW + bisection) and ``engine="fmn"`` (Fast
Minimum-Norm + bisection) — on every zoo MNIST model (real test digits) and on resnet18:
median and mean boundary distance, found rate, forward+backward rows per sample, wall time,
and the share of samples where FMN's point is at most as far as the sweep's.

    python benchmarks/bench_boundary.py --engines [--batch 16] [--norm l2] [--targeted]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torchvision

import faithmap as fm
from faithmap.attacks import find_boundary
from faithmap.evaluation.throughput import device_name, timed, timed_call

REFERENCE_PASSES = 7 * 40 + 100
ZOO = ("mnist_allconv", "mnist_vgg", "mnist_resnet", "mnist_bottleneck", "mnist_vgg_robust")



def one_pass(model, x):
    """One plain forward+backward (input gradient) of the batch."""
    xi = x.clone().requires_grad_(True)
    torch.autograd.grad(model(xi)[:, 0].sum(), xi)


def fb_time(model, x, device: str, repeats: int = 5) -> float:
    return statistics.median(timed(lambda: one_pass(model, x), device) for _ in range(repeats))


def run_case(name: str, model, x, device: str, batch_size: int, compare: bool) -> list[str]:
    n = len(x)
    one_pass(model, x)  # warm-up
    t_fb0 = fb_time(model, x, device)
    big = fm.BoundaryIntegratedGradients(model, n_steps=50, batch_size=batch_size, cache=True)
    fm.methods.boundary.DEFAULT_CACHE.clear()
    t_cold, _ = timed_call(lambda: big(x), device)  # search + 50 IG steps
    b = big.metadata["boundary"]  # the search record as a dict (Boundary's fields)
    t_hot, _ = timed_call(lambda: big(x), device)  # cache hit: the 50 IG steps only
    assert big.metadata["cache_hit"]
    t_fb = (t_fb0 + fb_time(model, x, device)) / 2
    t_search = t_cold - t_hot
    fb_rows, f_rows = b["forward_backward"] / n, b["forward"] / n
    found = b["found"]
    dist = b["distances"][found].mean().item() if bool(found.any()) else float("nan")
    attacks = ", ".join(f"{a}: {b['attack'].count(a)}" for a in sorted(set(b["attack"])))
    rows = [
        f"| {name} | {fb_rows:.0f} | {f_rows:.0f} | {fb_rows / REFERENCE_PASSES:.2f} | "
        f"{t_search:.1f} | {t_search / t_fb:.0f} | {t_hot:.2f} | {t_hot / t_fb:.0f} | "
        f"{found.float().mean():.3f} | {dist:.3f} | {attacks} | {len(b['radii'])} |"
    ]
    if compare:
        kw = {"batch_size": batch_size, "seed": 0, "cw_steps": 0, "refine_steps": 0}
        t_off, off = timed_call(lambda: find_boundary(model, x, early_stop=False, **kw), device)
        t_on, on = timed_call(lambda: find_boundary(model, x, **kw), device)
        same = torch.equal(on.points, off.points)
        rows.append(f"early stop ({name}, PGD sweep only): {on.forward_backward / n:.0f} vs "
                    f"{off.forward_backward / n:.0f} fwd+bwd rows per sample without it "
                    f"({t_on:.1f} s vs {t_off:.1f} s); identical points: {same}")
    return rows


def engine_cases(size: int, batch: int, device: str):
    """(name, model, x) for the engine comparison: the zoo models on spread test digits and
    resnet18 (random weights) on uniform noise at size²."""
    images, _ = fm.data.load("mnist", split="test")
    x = images[torch.linspace(0, len(images) - 1, batch).long()].to(device)
    for name in ZOO:
        yield name, fm.zoo.load(name).to(device), x
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval().to(device)
    xr = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    yield f"resnet18 random 3×{size}²", model, xr.to(device)


def compare_engines(args) -> None:
    """The --engines table (module doc)."""
    dev = args.device
    print(f"# find_boundary engines side by side, batch {args.batch}, norm {args.norm}, {dev} "
          f"({device_name(dev)}), torch {torch.__version__}"
          + (", targets: the second most likely class" if args.targeted else ""))
    print("| model | engine | fwd+bwd rows / sample | fwd-only rows / sample | time (s) | "
          "found rate | median distance | mean distance | fmn ≤ sweep (share of samples) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, model, x in engine_cases(args.size, args.batch, dev):
        target = None
        if args.targeted:
            with torch.no_grad():
                target = model(x).topk(2, dim=1).indices[:, 1]
        out = {}
        for engine in ("sweep", "fmn"):
            kw = {"norm": args.norm, "batch_size": args.batch_size, "engine": engine}
            t, b = timed_call(
                lambda m=model, x=x, y=target, kw=kw: find_boundary(m, x, y, **kw), dev)
            out[engine] = b
            d = b.distances[b.found]
            med = d.median().item() if len(d) else float("nan")
            mean = d.mean().item() if len(d) else float("nan")
            share = ""
            if engine == "fmn":
                s = out["sweep"]
                ok = b.found & (~s.found | (b.distances <= s.distances * (1 + 1e-6)))
                share = f"{ok.float().mean():.2f}"
            n = len(x)
            print(f"| {name} | {engine} | {b.forward_backward / n:.1f} | {b.forward / n:.1f} | "
                  f"{t:.1f} | {b.found_rate:.3f} | {med:.3f} | {mean:.3f} | {share} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64, help="resnet18 input side")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=512, help="rows per chunk")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compare-early-stop", action="store_true",
                        help="also run the PGD sweep with and without early stop")
    parser.add_argument("--engines", action="store_true",
                        help="compare engine='sweep' and engine='fmn' on the zoo and resnet18")
    parser.add_argument("--norm", default="l2", help="norm of the --engines comparison")
    parser.add_argument("--targeted", action="store_true",
                        help="--engines: target the second most likely class")
    args = parser.parse_args()
    if args.engines:
        compare_engines(args)
        return
    dev = args.device
    print(f"# boundary search (defaults) + BIG (50 steps), batch {args.batch}, {dev} "
          f"({device_name(dev)}), torch {torch.__version__}, chunk {args.batch_size} rows; "
          f"reference pipeline: {REFERENCE_PASSES} fwd+bwd per sample")
    print("| model | fwd+bwd rows / sample | fwd-only rows / sample | ours / reference | "
          "search (s) | search / one fwd+bwd of the batch | BIG on a cache hit (s) | "
          "BIG / one fwd+bwd | "
          "found rate | mean L2 distance | found by | radii |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    images, _ = fm.data.load("mnist", split="test")
    x = images[torch.linspace(0, len(images) - 1, args.batch).long()].to(dev)
    extra = []
    lines = run_case("mnist_vgg (1×28×28)", fm.zoo.load("mnist_vgg").to(dev), x, dev,
                     args.batch_size, args.compare_early_stop)
    print(lines[0], flush=True)
    extra += lines[1:]
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval().to(dev)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    lines = run_case(f"resnet18 random (3×{args.size}×{args.size})", model, x.to(dev), dev,
                     args.batch_size, args.compare_early_stop)
    print(lines[0], flush=True)
    extra += lines[1:]
    for line in extra:
        print(line)


if __name__ == "__main__":
    main()
