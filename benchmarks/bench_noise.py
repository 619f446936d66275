"""Noise drawing for SmoothGrad/VarGrad/NeFLAG (issue 18): one generator call per row
(``core.seeding.randn_rows``, before) vs one per block of BLOCK draws of a sample
(``core.seeding.BlockDraws``, now).

Draws the noise of SmoothGrad's ``n_samples`` copies of ``--n`` images of 3×size² in
chunks of ``--batch`` rows, exactly as ``SmoothGrad.gradient_moments`` asks for them,
without the model (the drawing time alone). Median of ``--repeats`` runs, each after a
warm-up; the two ways alternate so machine drift hits both.

    OMP_NUM_THREADS=1 python benchmarks/bench_noise.py [--size 224] [--samples 50]
        [--batch 32] [--n 4] [--repeats 7] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from faithmap.core.batching import chunks
from faithmap.core.seeding import BLOCK, BlockDraws, randn_rows


def per_row(n, s, shape, batch, device):
    for rows in chunks(n * s, batch):
        keys = [(int(r) // s, int(r) % s) for r in rows]
        randn_rows(0, keys, shape, torch.float32, device)


def blocks(n, s, shape, batch, device):
    draws = BlockDraws(0, shape, torch.float32, device, per_sample=s)
    for rows in chunks(n * s, batch):
        draws(rows // s, rows % s)


def timed(fn, device, *args) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn(*args, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    device = torch.device(a.device)
    shape = (3, a.size, a.size)
    args = (a.n, a.samples, shape, a.batch)
    times: dict[str, list[float]] = {"per row": [], "blocks": []}
    per_row(*args, device), blocks(*args, device)  # warm-up
    for _ in range(a.repeats):
        times["per row"].append(timed(per_row, device, *args))
        times["blocks"].append(timed(blocks, device, *args))
    rows = a.n * a.samples
    print(f"noise for {a.n} images × {a.samples} draws of 3×{a.size}² in chunks of "
          f"{a.batch} on {device} ({torch.get_num_threads()} threads), BLOCK={BLOCK}, "
          f"median of {a.repeats}:")
    print("| draw | generator calls | seconds | ms per row |")
    print("|---|---:|---:|---:|")
    calls = {"per row": rows, "blocks": a.n * -(-a.samples // BLOCK)}
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {calls[name]} | {med:.3f} | {1e3 * med / rows:.2f} |")
    ratio = statistics.median(times["per row"]) / statistics.median(times["blocks"])
    print(f"speed-up: {ratio:.2f}×")


if __name__ == "__main__":
    main()
