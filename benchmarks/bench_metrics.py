"""Faithfulness and robustness metrics: faithmap vs Quantus, side by side in one run.

Deletion and insertion, 224 steps (224 pixels per step) on 64 grey 1×224×224 images
(one channel, so Quantus' per-feature flipping is per-pixel and values are equal), zeros
substrate, softmax probability of class 0, on a small strided CNN (random weights, ~25k
parameters), CPU. Quantus has no insertion metric: insertion is Quantus' PixelFlipping
run on the zeros image with a perturb_func that writes back the original pixels. Both
libraries are timed alternately; the table gives the median of ``--repeats`` runs and the
largest difference between the two libraries' curves.

Each metric's time is also given as a multiple of the raw forward passes it needs: the
same metric run again with its model wrapped so that every forward call is timed (the bare
forwards of exactly the perturbed batches it builds), the multiple being that call's wall
time over its forwards' time (both sides under the same machine load); 1.00× would mean
building the batches and scoring cost nothing. The last row runs deletion, insertion,
insertion−deletion, LeRF−MoRF and both report curves inside one ``shared_curves()`` (as
``fm.evaluate`` does per block): three distinct curves' forwards (deletion = MoRF on the
zero substrate), beside Quantus' time for its four curves (deletion and insertion, each for
a metric and a figure).

Max-sensitivity (Saliency explainer, 10 draws, radius 0.2) on 16 images 3×32×32, the same
uniform noise fed to Quantus through its perturb_func.

    python benchmarks/bench_metrics.py [--images 64] [--size 224] [--repeats 1] [--device cpu]
        [--model small_cnn|resnet18]
    python benchmarks/bench_metrics.py --demo-forwards   # forward rows of the demo's metrics
"""

from __future__ import annotations

import argparse
import math
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



def grey_resnet18(classes: int = 10) -> nn.Module:
    """torchvision resnet18 (random weights) on one channel: a model whose forward, not the
    metric's bookkeeping, dominates — what a user's network looks like to the metric."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=classes)
    model.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
    return model.eval()


MODELS = {"small_cnn": small_cnn, "resnet18": grey_resnet18}


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


class TimedForwards(nn.Module):
    """Wraps a model: adds the wall time of each forward call (CUDA-synchronised) to
    ``seconds`` and its rows to ``rows`` — the bare forwards of exactly the batches a
    metric builds, timed inside the same call."""

    def __init__(self, model: nn.Module, device: str) -> None:
        super().__init__()
        self.model, self.device = model, device
        self.clock = {"seconds": 0.0, "rows": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seconds, out = timed_call(lambda: self.model(x), self.device)
        self.clock["seconds"] += seconds
        self.clock["rows"] += x.shape[0]
        return out


def forward_multiple(args, model, metric) -> tuple[float, float, int, float]:
    """(metric seconds, bare-forward seconds, rows, multiple), medians over ``--repeats``.
    The metric is timed alone, then run again with its forwards timed inside the call; the
    multiple is that second call's wall time over its forwards' time, so machine load hits
    both sides of the ratio equally."""
    ours, raw, ratio, rows = [], [], [], 0
    for _ in range(args.repeats):
        ours.append(timed_call(lambda: metric(model), args.device)[0])
        wrapped = TimedForwards(model, args.device)
        total = timed_call(lambda w=wrapped: metric(w), args.device)[0]
        raw.append(wrapped.clock["seconds"])
        ratio.append(total / wrapped.clock["seconds"])
        rows = wrapped.clock["rows"]
    return statistics.median(ours), statistics.median(raw), rows, statistics.median(ratio)


def bench_deletion_insertion(args, quantus) -> list[tuple]:
    model = MODELS[args.model]().to(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.images, 1, args.size, args.size, generator=g)
    a = torch.randn(x.shape, generator=g)
    xd, ad = x.to(args.device), a.to(args.device)
    y = np.zeros(len(x), dtype=np.int64)
    step = args.size * args.size // 224
    common = dict(baseline="zeros", batch_size=args.batch_size)
    rows, quantus_s = [], {}
    for mode in ("deletion", "insertion"):
        ours_t, theirs_t = [], []
        for _ in range(args.repeats):
            t, (_, ours) = timed_call(lambda m=mode: ff.perturbation_curve(
                model, xd, ad, 0, mode=m, step=step, **common), args.device)
            ours_t.append(t)
            t, theirs = timed_call(lambda m=mode: quantus_curves(
                quantus, model, x, a, y, step, m == "insertion", args.device), args.device)
            theirs_t.append(t)
        diff = float(np.abs(ours[:, 1:].cpu().numpy() - theirs).max())  # Quantus: no point 0
        quantus_s[mode] = statistics.median(theirs_t)
        o, raw, n_rows, k = forward_multiple(args, model, lambda m, mode=mode: getattr(
            ff, mode)(m, xd, ad, 0, step=step, **common))
        rows.append((f"{mode}, {ours.shape[1] - 1} steps, {len(x)}×1×{args.size}²", o, raw,
                     n_rows, k, quantus_s[mode], diff))
    o, raw, n_rows, k = forward_multiple(args, model, lambda m: ff.insertion_deletion(
        m, xd, ad, 0, step=step, insertion_baseline="zeros", deletion_baseline="zeros",
        batch_size=args.batch_size))
    rows.append((f"insertion−deletion (zeros), {len(x)}×1×{args.size}²", o, raw, n_rows, k,
                 quantus_s["deletion"] + quantus_s["insertion"], math.nan))
    o, raw, n_rows, k = forward_multiple(args, model, lambda m: ff.lerf_morf_gap(
        m, xd, ad, 0, features_in_step=step, batch_size=args.batch_size))
    rows.append((f"LeRF−MoRF gap, {len(x)}×1×{args.size}²", o, raw, n_rows, k, math.nan,
                 math.nan))
    # the metric set of an evaluation block: one shared computation (metrics.shared_curves)
    def metric_set(m):
        with ff.shared_curves():
            ff.deletion(m, xd, ad, 0, step=step, **common)
            ff.insertion(m, xd, ad, 0, step=step, **common)
            ff.insertion_deletion(m, xd, ad, 0, step=step, insertion_baseline="zeros",
                                  deletion_baseline="zeros", batch_size=args.batch_size)
            ff.lerf_morf_gap(m, xd, ad, 0, features_in_step=step, batch_size=args.batch_size)
            ff.perturbation_curve(m, xd, ad, 0, mode="deletion", step=step, **common)
            ff.perturbation_curve(m, xd, ad, 0, mode="insertion", step=step, **common)

    o, raw, n_rows, k = forward_multiple(args, model, metric_set)
    rows.append(("all five + both report curves, shared", o, raw, n_rows, k,
                 2 * quantus_s["deletion"] + 2 * quantus_s["insertion"], math.nan))
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


def demo_forward_rows(n: int = 16) -> str:
    """Gradient-free forward rows of the demo's metric set and figures: ``fm.evaluate`` with
    saliency on ``n`` cluttered digits, the demo's model, metrics and metric options."""
    from faithmap.evaluation.data import load_eval_data
    from faithmap.evaluation.demo import DEMO_METRIC_OPTIONS, DEMO_METRICS, DEMO_MODEL
    from faithmap.zoo.model_spec import load_model

    model = load_model(DEMO_MODEL).model
    rows: list[int] = []
    hook = model.register_forward_pre_hook(
        lambda m, a: rows.append(0 if torch.is_grad_enabled() else len(a[0])))
    try:
        fm.evaluate(model, load_eval_data("cluttered", n=n, seed=0), ["saliency"],
                    list(DEMO_METRICS), n=n, metric_options=DEMO_METRIC_OPTIONS,
                    progress=False)
    finally:
        hook.remove()
    return (f"demo metric set + figures, saliency on {n} cluttered digits: {sum(rows)} "
            f"gradient-free forward rows ({sum(rows) / n:.1f} per sample)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="small_cnn", choices=sorted(MODELS),
                        help="the classifier of the deletion/insertion rows")
    parser.add_argument("--demo-forwards", action="store_true",
                        help="only count the demo metric set's forward rows (no timing)")
    args = parser.parse_args()
    if args.demo_forwards:
        print(demo_forward_rows())
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    import quantus

    where = device_name(args.device)
    print(f"torch {torch.__version__}, quantus {quantus.__version__}, {args.device} ({where}), "
          f"{torch.get_num_threads()} thread(s), batch_size {args.batch_size}, "
          f"model {args.model}\n")
    rows = bench_deletion_insertion(args, quantus)
    ms = bench_max_sensitivity(quantus) if args.device == "cpu" else "skipped on cuda"
    print("| metric | faithmap (s) | bare forwards (s) | rows | × forwards | Quantus (s) "
          "| speed-up | max |Δ| |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, o, raw, n_rows, k, q, diff in rows:
        quantus_cell = "— | —" if math.isnan(q) else f"{q:.2f} | {q / o:.1f}×"
        diff_cell = "—" if math.isnan(diff) else f"{diff:.1e}"
        print(f"| {name} | {o:.2f} | {raw:.2f} | {n_rows} | {k:.2f}× | {quantus_cell} "
              f"| {diff_cell} |")
    if isinstance(ms, tuple):
        name, o, q, diff = ms
        print(f"| {name} | {o:.2f} | — | — | — | {q:.2f} | {q / o:.1f}× | {diff:.1e} |")
    if isinstance(ms, str):
        print(f"\nmax-sensitivity {ms}")


if __name__ == "__main__":
    main()
