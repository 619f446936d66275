"""Gradient baselines vs Captum and vs the raw forward+backward cost (issue 2).

Saliency, Integrated Gradients (50 steps) and SmoothGrad (50 samples) on torchvision
resnet18 (random weights), 224², batch 8, CPU. Ours and Captum are timed alternately in
one run (same chunk budget: Captum's internal_batch_size / nt_samples_batch_size = ours);
the raw cost is n plain forward+backward passes of the same batch, timed in the same
alternation (ours, Captum, raw), so machine drift hits all three equally. Peak memory
(max RSS of a fresh process) is measured for IG at several ``batch_size`` budgets.

    python benchmarks/bench_gradients.py [--heavy-repeats 1] [--size 224] [--batch 8] [--device cpu]

``--completeness`` (issue 18) instead compares IG's passes for its completeness error
|Σ IG − Δf| / |Δf|: Captum IG, Gauss–Legendre 50 steps, vs ours with ``n_steps="auto"`` at
the tolerance of Captum's median error and at the default 1e-2, on the zoo models (32 test
digits) and torchvision resnet18 (random weights, the bundled photos and their mirror
images at 64²), zero baseline (and, for resnet18, also a grey 0.5 one), the predicted
class. Passes = forward+backward rows per sample; ours also spends one gradient-free
forward per sample on f_y(x') (column "fwd").

    python benchmarks/bench_gradients.py --completeness [--n 32]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics

import torch
import torchvision

import faithmap as fm
from faithmap.evaluation.throughput import device_name, timed


def raw_passes(model, x, n: int):
    """n plain forward+backward passes (input gradient) of the batch: the raw cost."""

    def run():
        for _ in range(n):
            xi = x.clone().requires_grad_(True)
            torch.autograd.grad(model(xi)[:, 0].sum(), xi)

    return run


def cases(model, x, batch_size: int):
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    flat = x.flatten(1)
    std = float(0.15 * (flat.max(1).values - flat.min(1).values).mean())
    target = torch.zeros(len(x), dtype=torch.long, device=x.device)
    return {
        "saliency": (1,
                     lambda: fm.Saliency(model, batch_size=batch_size)(x, target),
                     lambda: Saliency(model).attribute(x, target=target)),
        "integrated_gradients (50 steps)": (
            50,
            lambda: fm.IntegratedGradients(model, n_steps=50, batch_size=batch_size)(x, target),
            lambda: IntegratedGradients(model).attribute(
                x, target=target, n_steps=50, internal_batch_size=batch_size)),
        "smoothgrad (50 samples)": (
            50,
            lambda: fm.SmoothGrad(model, n_samples=50, stdev=std, batch_size=batch_size)(
                x, target),
            lambda: NoiseTunnel(Saliency(model)).attribute(
                x, target=target, nt_type="smoothgrad", nt_samples=50, stdevs=std,
                nt_samples_batch_size=max(1, batch_size // len(x)), abs=False)),
    }


def _peak_rss_child(batch_size, size, batch, queue) -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.rand(batch, 3, size, size)
    fm.IntegratedGradients(model, n_steps=16, batch_size=batch_size)(x, 0)
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_memory(size: int, batch: int, budgets=(8, 32, 128)) -> dict[int, float]:
    ctx = mp.get_context("spawn")
    out = {}
    for b in budgets:
        queue = ctx.Queue()
        proc = ctx.Process(target=_peak_rss_child, args=(b, size, batch, queue))
        proc.start()
        out[b] = queue.get()
        proc.join()
    return out


def completeness_rows(n: int = 32):
    """Per model: Captum GL-50's median error, then ours ("auto") at two tolerances."""
    from captum.attr import IntegratedGradients

    digits = fm.data.load("mnist", split="test")[0][:n]
    photos = torch.stack(list(fm.data.sample_images(size=64).values()))
    torch.manual_seed(0)
    models = [(name, fm.zoo.load(name).eval(), digits, 0.0)
              for name in ("mnist_allconv", "mnist_vgg", "mnist_resnet")]
    resnet, photos = torchvision.models.resnet18().eval(), torch.cat([photos, photos.flip(-1)])
    models.append(("resnet18 64² (random)", resnet, photos, 0.0))
    # beyond the issue: a random bias-free ResNet is linear on rays from 0 (BN at init has no
    # shift), so the zero baseline is trivial for it; a grey baseline gives a kinked path
    models.append(("resnet18 64² (random), grey 0.5 baseline", resnet, photos, 0.5))
    print("| model | n | Captum GL-50 median err | passes | tolerance | ours median err "
          "| ours max err | ours mean passes (max) | fwd | ours / Captum passes | converged |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, model, x, base in models:
        b = torch.full_like(x, base)
        with torch.no_grad():
            t = model(x).argmax(1)
            gap = (model(x).gather(1, t[:, None]) - model(b).gather(1, t[:, None])).squeeze(1)
        _, delta = IntegratedGradients(model).attribute(
            x, baselines=b, target=t, n_steps=50, method="gausslegendre",
            return_convergence_delta=True)
        captum = float((delta.abs() / gap.abs()).median())
        for tol in (captum, 1e-2):
            ig = fm.IntegratedGradients(model, n_steps="auto", tolerance=tol, baseline=base)
            ig(x, t)
            m = ig.metadata
            steps = m["n_steps"].double()
            print(f"| {name} | {len(x)} | {captum:.2e} | 50 | {tol:.2e} | "
                  f"{float(m['completeness_error'].median()):.2e} | "
                  f"{float(m['completeness_error'].max()):.2e} | {float(steps.mean()):.1f} "
                  f"({int(steps.max())}) | 1 | {float(steps.mean()) / 50:.2f} | "
                  f"{float(m['converged'].double().mean()):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats for saliency")
    parser.add_argument("--heavy-repeats", type=int, default=1, help="repeats for IG/SmoothGrad")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32, help="chunk budget (rows)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--completeness", action="store_true",
                        help="IG passes for Captum GL-50's completeness error (issue 18)")
    parser.add_argument("--n", type=int, default=32, help="digits for --completeness")
    args = parser.parse_args()
    if args.completeness:
        completeness_rows(args.n)
        return

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval().to(args.device)
    x = torch.rand(args.batch, 3, args.size, args.size, device=args.device)
    print(f"# resnet18, {args.size}², batch {args.batch}, {args.device} "
          f"({device_name(args.device)}), torch {torch.__version__}, "
          f"chunk budget {args.batch_size} rows")
    print("| method | ours (s) | Captum (s) | ours / Captum | raw n×fwd+bwd (s) | ours / raw |")
    print("|---|---|---|---|---|---|")
    for name, (n, ours, theirs) in cases(model, x, args.batch_size).items():
        if n == 1:  # warm-up (the heavier methods run warm after this one)
            ours(), theirs()
        raw_fn = raw_passes(model, x, n)
        t_ours, t_captum, t_raw = [], [], []
        for _ in range(args.repeats if n == 1 else args.heavy_repeats):  # alternate: drift
            # hits all three equally
            t_ours.append(timed(ours, args.device))
            t_captum.append(timed(theirs, args.device))
            t_raw.append(timed(raw_fn, args.device))
        o, c, raw = (statistics.median(t) for t in (t_ours, t_captum, t_raw))
        print(f"| {name} | {o:.3f} | {c:.3f} | {o / c:.2f} | {raw:.3f} | {o / raw:.2f} |",
              flush=True)
    if not args.no_memory and args.device == "cpu":
        print("\n# peak RSS of a fresh process, IG 16 steps, by batch_size budget")
        for b, mb in peak_memory(args.size, args.batch).items():
            print(f"batch_size={b}: {mb:.0f} MiB")


if __name__ == "__main__":
    main()
