"""Wall-clock timing shared by the benchmark scripts (synchronising CUDA around the call)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str = "cpu") -> float:
    """Seconds one call of ``fn`` takes on ``device``."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def device_name(device: str) -> str:
    """The GPU's name, or the CPU and its thread count."""
    import platform

    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
