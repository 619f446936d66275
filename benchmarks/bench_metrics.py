"""Faithfulness and robustness metrics: faithmap vs Quantus, side by side in one run.

Deletion and insertion, 224 steps (224 pixels per step) on 64 grey 1×224×224 images
(one channel, so Quantus' per-feature flipping is per-pixel and values are equal), zeros
substrate, softmax probability of class 0, on a small strided CNN (random weights, ~25k
parameters), CPU. Quantus has no insertion metric: insertion is Quantus' PixelFlipping
run on the zeros image with a perturb_func that writes back the original pixels. Both
libraries are timed alternately; the table gives the median of ``--repeats`` runs and the
largest difference between the two libraries' curves.

Max-sensitivity (Saliency explainer, 10 draws, radius 0.2) on 16 images 3×32×32, the same
uniform noise fed to Quantus through its perturb_func.

    python benchmarks/bench_metrics.py [--images 64] [--size 224] [--repeats 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
import torch
from torch import nn

import faithmap as fm
from faithmap.evaluation.throughput import device_name, timed_call
from faithmap.metrics import faithfulness as ff

warnings.filterwarnings("ignore")


def small_cnn(in_channels: int = 1, classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 5, stride=4, padding=2), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes),
    ).eval()



def insert_original(arr, indices, source, **kwargs):
    """Quantus perturb_func: put the original pixels ``source`` back at ``indices``."""
    out = arr.copy()
    rows = np.arange(arr.shape[0])[:, None]
    out[rows, indices] = source.reshape(arr.shape[0], -1)[rows, indices]
    return out


def quantus_curves(quantus, model, x, a, y, step: int, insert: bool,
                   device: str = "cpu") -> np.ndarray:
    kwargs = {"perturb_func": insert_original, "perturb_func_kwargs": {"source": x.numpy()}}
    pf = quantus.PixelFlipping(features_in_step=step, normalise=False, perturb_baseline=0.0,
                               disable_warnings=True, **(kwargs if insert else {}))
    start = np.zeros_like(x.numpy()) if insert else x.numpy()
    return np.asarray(pf(model=model, x_batch=start, y_batch=y, a_batch=a.numpy(),
                         device=device, softmax=True, batch_size=len(x)))


def bench_deletion_insertion(args, quantus) -> list[tuple]:
    model = small_cnn().to(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.images, 1, args.size, args.size, generator=g)
    a = torch.randn(x.shape, generator=g)
    xd, ad = x.to(args.device), a.to(args.device)
    y = np.zeros(len(x), dtype=np.int64)
    step = args.size * args.size // 224
    rows = []
    for mode in ("deletion", "insertion"):
        ours_t, theirs_t = [], []
        for _ in range(args.repeats):
            t, (_, ours) = timed_call(lambda m=mode: ff.perturbation_curve(
                model, xd, ad, 0, mode=m, step=step, baseline="zeros",
                batch_size=args.batch_size), args.device)
            ours_t.append(t)
            t, theirs = timed_call(lambda m=mode: quantus_curves(
                quantus, model, x, a, y, step, m == "insertion", args.device), args.device)
            theirs_t.append(t)
        diff = float(np.abs(ours[:, 1:].cpu().numpy() - theirs).max())  # Quantus: no point 0
        o, q = statistics.median(ours_t), statistics.median(theirs_t)
        rows.append((f"{mode}, {ours.shape[1] - 1} steps, {len(x)}×1×{args.size}²", o, q, diff))
    return rows


def bench_max_sensitivity(quantus) -> tuple | str:
    max_sensitivity = getattr(fm.metrics, "max_sensitivity", None)
    try:
        from faithmap.metrics.robustness import max_sensitivity as ms
        from faithmap.metrics.robustness import sensitivity_noise
    except ImportError as exc:
        if max_sensitivity is None:
            return f"skipped: faithmap.metrics.max_sensitivity is not importable ({exc})"
        ms, sensitivity_noise = max_sensitivity, None
    model = small_cnn(3)
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    explainer = fm.Saliency(model)
    a = explainer(x)
    s, radius = 10, 0.2
    t_ours, ours = timed_call(lambda: ms(model, x, a, explainer=explainer, radius=radius,
                                    n_samples=s, seed=0, batch_size=160))
    y = model(x).argmax(1).numpy()
    kwargs = {}
    if sensitivity_noise is not None:
        rows = torch.arange(len(x) * s)
        noise = sensitivity_noise(x, rows, s, radius, 0).view(len(x), s, *x.shape[1:]).numpy()
        draw = iter(range(s))

        def perturb(arr, indices=None, indexed_axes=None, **kw):
            return arr + noise[:, next(draw)].reshape(arr.shape)

        kwargs = {"perturb_func": perturb}

    def explain(model, inputs, targets, **kw):
        return explainer(torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()

    metric = quantus.MaxSensitivity(nr_samples=s, lower_bound=radius, disable_warnings=True,
                                    **kwargs)
    t_q, theirs = timed_call(lambda: metric(model=model, x_batch=x.numpy(), y_batch=y,
                                       a_batch=a.numpy(), explain_func=explain))
    diff = float(np.abs(ours.numpy() - np.asarray(theirs)).max())
    return (f"max-sensitivity, {s} draws, 16×3×32²", t_ours, t_q, diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import quantus

    where = device_name(args.device)
    print(f"torch {torch.__version__}, quantus {quantus.__version__}, {args.device} ({where}), "
          f"{torch.get_num_threads()} thread(s), batch_size {args.batch_size}\n")
    rows = bench_deletion_insertion(args, quantus)
    ms = bench_max_sensitivity(quantus) if args.device == "cpu" else "skipped on cuda"
    print("| metric | faithmap (s) | Quantus (s) | speed-up | max |Δ| |")
    print("|---|---:|---:|---:|---:|")
    for name, o, q, diff in rows + ([ms] if isinstance(ms, tuple) else []):
        print(f"| {name} | {o:.2f} | {q:.2f} | {q / o:.1f}× | {diff:.1e} |")
    if isinstance(ms, str):
        print(f"\nmax-sensitivity {ms}")


if __name__ == "__main__":
    main()
