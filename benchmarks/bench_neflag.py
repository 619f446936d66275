"""NeFLAG cost: wall time as a multiple of one forward+backward pass (issues 8, 16).

NeFLAG with n points and T steps needs, per sample, T + n forward+backward passes with
``sampling="stratified"`` (the default: T steps for the axis, one flux gradient per point)
and n·(T+1) with ``sampling="descent"`` (T search steps and one flux gradient per point),
batched in chunks of ``batch_size`` rows. For each case this prints, timed alternately in one
run (so machine drift hits all equally):
- ours: one NeFLAG call on the batch;
- 1×: one forward+backward (input gradient) of the batch; ours / 1× is the cost multiple,
  to compare with the passes per sample (fewer when larger chunks use the hardware better);
- raw: the same rows as plain forward+backward passes in the same chunks;
  ours / raw is NeFLAG's overhead beyond its gradients (seeding, projections, flux).
Models: the zoo's mnist_vgg (28², batch 8) and torchvision resnet18 (random weights,
112², batch 2, n ≤ 4, so the script stays under ~3 minutes on one CPU thread).

    python benchmarks/bench_neflag.py [--repeats 3] [--device cpu] [--models vgg,resnet]
                                      [--sampling stratified|descent]
"""

from __future__ import annotations

import argparse
import math
import statistics
from functools import partial

import torch

import faithmap as fm
from faithmap.evaluation.throughput import device_name, timed


def fwd_bwd(model, x, target):
    """One input-gradient pass of the target probability (NeFLAG's default score)."""
    xi = x.clone().requires_grad_(True)
    p = model(xi).softmax(1).gather(1, target[:, None])
    torch.autograd.grad(p.sum(), xi)


def _chunks(x, target, rows: int, batch_size: int):
    sizes = [min(batch_size, rows - s) for s in range(0, rows, batch_size)]
    return [(x.repeat(math.ceil(b / len(x)), 1, 1, 1)[:b],
             target.repeat(math.ceil(b / len(x)))[:b]) for b in sizes]


def raw_rows(model, x, target, n: int, steps: int, batch_size: int, sampling: str):
    """NeFLAG's gradient passes in its chunks, nothing else: stratified, T passes for every
    chunk of the N axis rows and one for every chunk of the n·N point rows; descent, (T+1)
    for every chunk of the n·N rows."""
    if sampling == "descent":
        plan = [(c, steps + 1) for c in _chunks(x, target, n * len(x), batch_size)]
    else:
        plan = ([(c, steps) for c in _chunks(x, target, len(x), batch_size)]
                + [(c, 1) for c in _chunks(x, target, n * len(x), batch_size)])

    def run():
        for (xc, tc), times in plan:
            for _ in range(times):
                fwd_bwd(model, xc, tc)

    return run


def passes(n: int, steps: int, sampling: str) -> int:
    """Forward+backward passes per sample."""
    return n * (steps + 1) if sampling == "descent" else steps + n


def cases(device: str, models: str):
    torch.manual_seed(0)
    if "vgg" in models:
        vgg = fm.zoo.load("mnist_vgg").to(device)
        yield "mnist_vgg 28², batch 8", vgg, torch.rand(8, 1, 28, 28, device=device), (1, 10, 20)
    if "resnet" in models:
        resnet = fm.zoo.torchvision("resnet18", num_classes=10).to(device)  # random weights
        yield "resnet18 112², batch 2", resnet, torch.rand(2, 3, 112, 112, device=device), (1, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32, help="chunk budget (rows)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="vgg,resnet", help="vgg, resnet or both")
    parser.add_argument("--sampling", default="stratified", choices=("stratified", "descent"))
    args = parser.parse_args()
    print(f"# NeFLAG ({args.sampling}), T={args.steps} steps, {args.device} "
          f"({device_name(args.device)}), torch {torch.__version__}, chunk budget "
          f"{args.batch_size} rows")
    print("| model | n | ours (s) | 1× fwd+bwd (s) | ours / 1× | passes | raw (s) | ours / raw |")
    print("|---|---|---|---|---|---|---|---|")
    for label, model, x, ns in cases(args.device, args.models):
        with torch.no_grad():
            target = model(x).argmax(1)
        fwd_bwd(model, x, target)  # warm-up
        for n in ns:
            explainer = fm.NeFLAG(model, n_samples=n, steps=args.steps, seed=0,
                                  batch_size=args.batch_size, sampling=args.sampling)
            raw = raw_rows(model, x, target, n, args.steps, args.batch_size, args.sampling)
            ours = partial(explainer, x, target)
            one_pass = partial(fwd_bwd, model, x, target)
            t_ours, t_one, t_raw = [], [], []
            for _ in range(args.repeats):
                t_ours.append(timed(ours, args.device))
                t_one.append(timed(one_pass, args.device))
                t_raw.append(timed(raw, args.device))
            o, one, r = (statistics.median(t) for t in (t_ours, t_one, t_raw))
            print(f"| {label} | {n} | {o:.3f} | {one:.4f} | {o / one:.1f} | "
                  f"{passes(n, args.steps, args.sampling)} | {r:.3f} | {o / r:.2f} |", flush=True)


if __name__ == "__main__":
    main()
