"""Per-method throughput on one model and device (``faithmap bench``).

For each method: samples per second of ``explainer(x)`` on a random batch, and its cost as a
multiple of one plain forward+backward pass (input gradient of the predicted class) of the
same batch, timed alternately in the same run so machine drift hits both equally. This is
the number to record for a GPU (``faithmap bench --model torchvision:resnet50 --size 224
--images 32 --device cuda``); the per-method scripts in ``benchmarks/`` compare against
Captum and literal references.
"""

from __future__ import annotations

import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..core.registry import get_explainer
from ..core.validation import check_positive_int


def timed_call(fn: Callable[[], object], device: str | torch.device = "cpu") -> tuple[float, Any]:
    """(seconds, result) of one call of ``fn``, synchronising CUDA around it."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def timed(fn: Callable[[], object], device: str | torch.device = "cpu") -> float:
    """Seconds one call of ``fn`` takes on ``device``."""
    return timed_call(fn, device)[0]


def device_name(device: str | torch.device) -> str:
    """The GPU's name, or the CPU and its thread count (for benchmark headers)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"


#: Methods that cache their boundary search; the bench turns it off unless asked.
CACHING_METHODS = ("bsm", "big", "boundary_smoothgrad")


def bench_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``options`` for benchmarking ``method``: ``cache=False`` by default for
    the caching methods (time and count the search, not a cache hit)."""
    opts = dict(options)
    if method in CACHING_METHODS:
        opts.setdefault("cache", False)
    return opts


def forward_backward(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward+backward pass of the batch (input gradient of the predicted class)."""

    def run() -> None:
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        torch.autograd.grad(out.gather(1, out.argmax(1, keepdim=True)).sum(), xi)

    return run


def measure(model: nn.Module, x: torch.Tensor, methods: list[str],
            options: dict[str, dict[str, Any]] | None = None,
            repeats: int = 3) -> list[dict[str, Any]]:
    """One row per method: seconds per call (median of ``repeats`` after a warm-up),
    samples/s, and the cost in forward+backward passes; a method that fails gets ``error``."""
    check_positive_int("repeats", repeats)
    options = options or {}
    device = x.device
    raw = forward_backward(model, x)
    raw()  # warm-up
    rows = []
    for method in methods:
        opts = bench_options(method, options.get(method, {}))
        try:
            explainer = get_explainer(model, method, **opts)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                explainer(x)  # warm-up (and builds caches a real run would build once)
                ours, base = [], []
                for _ in range(repeats):
                    ours.append(timed(lambda e=explainer: e(x), device))
                    base.append(timed(raw, device))
        except Exception as exc:  # noqa: BLE001 - one method's failure is reported, not fatal
            rows.append({"method": method, "error": f"{type(exc).__name__}: {exc}"})
            continue
        s, r = statistics.median(ours), statistics.median(base)
        rows.append({"method": method, "seconds": s, "samples_per_s": x.shape[0] / s,
                     "fwd_bwd_seconds": r, "cost_in_fwd_bwd": s / r})
    return rows
