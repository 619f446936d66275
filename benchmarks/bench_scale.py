"""Evaluation throughput: one process vs 1 and 2 local Ray workers, and Ray's overheads (issue 10).

BIG (boundary search + 50-step IG; falls back to 64-step Integrated Gradients if ``big`` is
not registered) on zoo:mnist_allconv over the ``grid`` benchmark, scored by one cheap metric
(sparseness) so the method dominates. Each configuration is timed end to end (actor start,
model shipping, blocks, result streaming) in the same run, so the ratios survive a busy
machine. Overheads measured separately: Ray start-up (``ray.init``), worker start + model
shipping (until a fresh actor answers), and the per-task round trip of an empty call.
Prints a simulated scaling plan: samples/s ≈ W·b / (b/r + t_task) for W workers, block b,
per-worker rate r and task overhead t_task, plus fixed start-up costs over N samples.

    OMP_NUM_THREADS=1 python benchmarks/bench_scale.py [--n 16] [--block 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

import faithmap as fm
from faithmap.evaluation import load_eval_data


def run(model, data, method, options, block, **kw) -> float:
    tic = time.perf_counter()
    result = fm.evaluate(model, data, [method], ["sparseness"], progress=False,
                         curve_samples=0, heatmap_samples=0, block=block,
                         method_options={method: options}, **kw)
    seconds = time.perf_counter() - tic
    assert not result.errors, result.errors
    return seconds


def overheads(ray, model) -> dict[str, float]:
    """Worker start + model shipping, and the round trip of an empty task (median of 50)."""
    from faithmap.evaluation.ray_backend import _Worker

    spec = {"metrics": [], "method_options": {}, "metric_options": {}, "seed": 0,
            "batch_size": 32, "keep": 0}
    actor_cls = ray.remote(num_cpus=1)(_Worker)
    tic = time.perf_counter()
    ref = ray.put(model)
    ship = time.perf_counter() - tic
    actor = actor_cls.remote(ref, spec, "cpu")
    ray.get(actor.pid.remote())
    start = time.perf_counter() - tic
    trips = []
    for _ in range(50):
        t0 = time.perf_counter()
        ray.get(actor.pid.remote())
        trips.append(time.perf_counter() - t0)
    ray.kill(actor)
    return {"put_model_s": ship, "worker_start_s": start, "task_roundtrip_s":
            statistics.median(trips)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--block", type=int, default=4)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    import ray

    torch.set_num_threads(1)
    model = fm.zoo.load("mnist_allconv")
    if "big" in fm.available_methods():
        method, options = "big", {}
    else:
        method, options = "integrated_gradients", {"n_steps": 64}
    data = load_eval_data("grid", n=args.n, seed=0, channels=1)
    n = min(args.n, len(data.images))
    print(f"{method} {options} on zoo:mnist_allconv, grid ({n} samples, "
          f"{tuple(data.images.shape[1:])}), block {args.block}; {platform.processor() or ''} "
          f"{os.cpu_count()} CPUs, torch threads 1")
    run(model, data, method, options, args.block, n=min(4, n))  # warm-up (imports, caches)
    single = run(model, data, method, options, args.block, n=n)
    tic = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - tic
    try:
        over = overheads(ray, model)
        one = run(model, data, method, options, args.block, n=n, backend="ray", ray_workers=1)
        two = run(model, data, method, options, args.block, n=n, backend="ray", ray_workers=2)
    finally:
        ray.shutdown()
    rate = {"single process": n / single, "ray, 1 worker": n / one, "ray, 2 workers": n / two}
    print(f"\n{'configuration':18s} {'seconds':>8s} {'samples/s':>10s} {'vs single':>10s}")
    for (name, r), s in zip(rate.items(), (single, one, two)):
        print(f"{name:18s} {s:8.2f} {r:10.2f} {r / rate['single process']:10.2f}")
    print(f"\noverheads: ray.init {ray_start:.2f} s, ray.put(model) {over['put_model_s']*1e3:.1f}"
          f" ms, worker start + model {over['worker_start_s']:.2f} s, task round trip "
          f"{over['task_roundtrip_s']*1e3:.2f} ms")
    # the per-worker rate without the fixed worker start (one actor, all blocks)
    r1 = n / max(one - over["worker_start_s"], 1e-9)
    t_task = over["task_roundtrip_s"]
    b = args.block
    total = 10_000
    print(f"\nsimulated plan (r = {r1:.2f} samples/s per worker, b = {b}, N = {total}; "
          "start-up = ray.init + worker start):")
    print(f"{'workers':>8s} {'samples/s':>10s} {'N in min':>9s} {'efficiency':>11s}")
    plan = []
    for w in (1, 2, 4, 8, 16, 32, 64):
        steady = w * b / (b / r1 + t_task)
        minutes = (ray_start + over["worker_start_s"] + total / steady) / 60
        eff = (total / steady) / (total / steady + ray_start + over["worker_start_s"])
        plan.append({"workers": w, "samples_per_s": steady, "minutes": minutes,
                     "efficiency": eff})
        print(f"{w:8d} {steady:10.1f} {minutes:9.1f} {eff:11.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"method": method, "options": options, "n": n, "block": b,
                       "seconds": {"single": single, "ray1": one, "ray2": two},
                       "samples_per_s": rate, "ray_init_s": ray_start, **over,
                       "plan": plan}, f, indent=1)


if __name__ == "__main__":
    main()
