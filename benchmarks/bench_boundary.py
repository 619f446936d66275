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

``--engines`` (issue 18) instead compares the search engines side by side —
``find_boundary(engine="fmn")`` (the default: Fast Minimum-Norm, Pintor et al., NeurIPS
2021, + bisection), ``engine="ddn"`` (Decoupled Direction and Norm, Rony et al., CVPR 2019,
+ bisection; L2 only), ``engine="sweep"`` (PGD sweep + CW + bisection, the previous default)
and, where adv-lib is installed, adv-lib's own ``fmn`` and ``ddn`` (100 steps, its defaults,
``levels=None``; no bisection) — on every zoo MNIST model (real test digits) and on
resnet18: median and mean boundary distance, found rate, forward+backward and forward-only
rows per sample, wall time, each as a ratio to the sweep's, and the share of samples where
the engine's point is at most as far as the sweep's. adv-lib's rows are counted by a hook.

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
    for name in fm.zoo.names():  # every zoo model
        yield name, fm.zoo.load(name).to(device), x
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval().to(device)
    xr = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    yield f"resnet18 random 3×{size}²", model, xr.to(device)


def adv_lib_attacks(norm: str) -> dict:
    """adv-lib's attacks for the comparison (name → callable(model, x, y, targeted)), {}
    where adv-lib is absent. Its ``attacks`` package imports visdom for its loggers, which
    FMN and DDN do not need: a stub logger module stands in while their files load."""
    try:
        import adv_lib
    except ImportError:
        return {}
    import importlib.util
    import sys
    import types
    from pathlib import Path

    def load(filename: str, name: str):
        path = Path(adv_lib.__path__[0]) / "attacks" / filename
        spec = importlib.util.spec_from_file_location(f"_bench_adv_lib_{name}", path)
        if spec is None or spec.loader is None:
            return None
        stub = types.ModuleType("adv_lib.utils.visdom_logger")
        stub.VisdomLogger = object
        saved = sys.modules.get("adv_lib.utils.visdom_logger")
        sys.modules["adv_lib.utils.visdom_logger"] = stub
        try:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            if saved is None:
                sys.modules.pop("adv_lib.utils.visdom_logger", None)
            else:
                sys.modules["adv_lib.utils.visdom_logger"] = saved
        return getattr(module, name)

    out = {}
    fmn = load("fast_minimum_norm.py", "fmn")
    if fmn is not None:
        p = 2 if norm == "l2" else float("inf")
        out["adv-lib fmn"] = lambda m, x, y, t: fmn(m, x, y, norm=p, targeted=t, steps=100)
    ddn = load("decoupled_direction_norm.py", "ddn")
    if ddn is not None and norm == "l2":
        out["adv-lib ddn"] = lambda m, x, y, t: ddn(m, x, y, targeted=t, steps=100, levels=None)
    return out


class Rows:
    """Rows through ``model``: all forwards, and those whose output received a gradient."""

    def __init__(self, model) -> None:
        self.forward = self.backward = 0
        self.handle = model.register_forward_hook(self.hook)

    def hook(self, _m, _i, out) -> None:
        self.forward += out.shape[0]
        if out.requires_grad:
            out.register_hook(lambda g, r=out.shape[0]: self.count(r, g))

    def count(self, rows: int, grad):
        self.backward += rows
        return grad


def compare_engines(args) -> None:
    """The --engines table (module doc)."""
    dev = args.device
    theirs = adv_lib_attacks(args.norm)
    print(f"# find_boundary engines side by side, batch {args.batch}, norm {args.norm}, {dev} "
          f"({device_name(dev)}), torch {torch.__version__}"
          + (", targets: the second most likely class" if args.targeted else "")
          + ("" if theirs else "; adv-lib not installed"))
    print("| model | engine | fwd+bwd rows / sample | fwd-only rows / sample | time (s) | "
          "found rate | median distance | mean distance | median / sweep's | "
          "fwd+bwd / sweep's | time / sweep's | ≤ sweep (share of samples) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    engines = ["sweep", "fmn"] + (["ddn"] if args.norm == "l2" else [])
    for name, model, x in engine_cases(args.size, args.batch, dev):
        n = len(x)
        with torch.no_grad():
            pred = model(x).topk(2, dim=1).indices
        target = pred[:, 1] if args.targeted else None
        rows = {}
        for engine in engines:
            kw = {"norm": args.norm, "batch_size": args.batch_size, "engine": engine}
            t, b = timed_call(
                lambda m=model, x=x, y=target, kw=kw: find_boundary(m, x, y, **kw), dev)
            rows[engine] = (b.forward_backward / n, b.forward / n, t, b.found, b.distances)
        y = pred[:, 1] if args.targeted else pred[:, 0]
        for label, attack in theirs.items():
            counter = Rows(model)
            try:
                t, adv = timed_call(
                    lambda m=model, x=x, y=y, a=attack: a(m, x, y, args.targeted), dev)
            finally:
                counter.handle.remove()
            with torch.no_grad():
                lab = model(adv).argmax(1)
            ok = (lab == y) if args.targeted else (lab != y)
            flat = (adv - x).flatten(1)
            d = flat.norm(dim=1) if args.norm == "l2" else flat.abs().amax(1)
            rows[label] = (counter.backward / n, (counter.forward - counter.backward) / n, t,
                           ok, torch.where(ok, d, torch.full_like(d, float("inf"))))
        s_fb, _, s_t, _, s_d = rows["sweep"]
        s_med = s_d.median().item()
        for label, (fb, fwd, t, found, dist) in rows.items():
            d = dist[found]
            med = dist.median().item()  # unfound = inf
            mean = d.mean().item() if len(d) else float("nan")
            share = (found & (dist <= s_d * (1 + 1e-6))).float().mean().item()
            print(f"| {name} | {label} | {fb:.1f} | {fwd:.1f} | {t:.1f} | "
                  f"{found.float().mean():.3f} | {med:.3f} | {mean:.3f} | {med / s_med:.3f} | "
                  f"{fb / s_fb:.2f} | {t / s_t:.2f} | "
                  f"{'' if label == 'sweep' else f'{share:.2f}'} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64, help="resnet18 input side")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=512, help="rows per chunk")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compare-early-stop", action="store_true",
                        help="also run the PGD sweep with and without early stop")
    parser.add_argument("--engines", action="store_true",
                        help="compare the engines 'sweep', 'fmn', 'ddn' (and adv-lib's fmn / "
                        "ddn) on the zoo and resnet18")
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
