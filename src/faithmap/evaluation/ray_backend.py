"""Run evaluation blocks on Ray actors: one model copy per worker, results streamed back.

``fm.evaluate(..., backend="ray")`` starts a light local Ray instance when no Ray is running
and no ``ray_address`` is given (``ray.init(num_cpus=workers, include_dashboard=False)``,
shut down at the end), joins the cluster at ``ray_address`` otherwise ("auto" finds a
running one). Each actor gets the model once from the object store, moves it to its GPU
when it was given one (``num_gpus=1`` when the cluster has GPUs and the device is ``auto``
or ``cuda``), and runs blocks with :class:`~faithmap.evaluation.blocks.BlockRunner`. A
worker process that dies is restarted and its block retried (``max_restarts``,
``max_task_retries``); a block whose retries are spent is reported as failed.
"""

from __future__ import annotations

import copy
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.devices import resolve_device
from .blocks import BlockResult, BlockRunner

RETRIES = 3
IN_FLIGHT = 2  # blocks queued per actor, so a worker never waits for the driver


def require_ray():
    """The ``ray`` module, or an ImportError that names the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray backend (backend='ray', faithmap evaluate --ray) needs Ray: "
                          "pip install 'faithmap[ray]'") from exc
    return ray


class _Worker:
    """A Ray actor: one model copy on this worker's device, blocks run one at a time."""

    def __init__(self, model: nn.Module, spec: dict[str, Any], device: str | None) -> None:
        self.runner = BlockRunner(model.to(worker_device(device)), spec)

    def run(self, *args: Any) -> BlockResult:
        return self.runner.run(*args)

    def pid(self) -> int:
        return os.getpid()


def worker_device(device: str | None) -> torch.device:
    """In a worker: OMP_NUM_THREADS threads (default 1) and the device to put the model on."""
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    return resolve_device(device or "auto")


def start_actors(ray: Any, worker: type, model: nn.Module, device: str | None,
                  workers: int | None, *args: Any) -> tuple[list[Any], Any]:
    """``workers`` actors of ``worker(model_ref, *args, device)`` (default: one per GPU of the
    cluster, else per CPU), restarted and retried when they die; also returns the model's
    object-store reference, which must stay alive while restarts may re-read it."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if device in (None, "auto", "cuda") else 0
    count = workers or (gpus or int(resources.get("CPU", 1)))
    _ship_by_value(model)
    model_ref = ray.put(model if _on_cpu(model) else copy.deepcopy(model).cpu())
    actor = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=RETRIES,
                       max_task_retries=RETRIES)(worker)
    return [actor.remote(model_ref, *args, device) for _ in range(count)], model_ref


def _ship_by_value(model: nn.Module) -> None:
    """Pickle the model's classes by value when their module lies outside installed packages
    (a script's or a test's own model file), so workers need not import it."""
    from ray import cloudpickle  # Ray's own copy, the one that pickles object refs

    for m in model.modules():
        mod = sys.modules.get(type(m).__module__)
        path = getattr(mod, "__file__", None) or ""
        installed = any(p in Path(path).parts for p in ("site-packages", "dist-packages"))
        if mod is None or not path or installed or mod.__name__.split(".")[0] in (
                "torch", "torchvision", "faithmap", "__main__"):
            continue
        try:
            cloudpickle.register_pickle_by_value(mod)
        except ValueError:  # a submodule of a package: pickled by reference as usual
            continue


def connect(address: str | None, workers: int | None) -> bool:
    """Join Ray: the running instance, the cluster at ``address``, or a new local instance
    with ``workers`` CPUs. True when this call started Ray (the caller shuts it down)."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    return True


class RayExecutor:
    """Runs blocks on ``workers`` actors and yields each :class:`BlockResult` as it finishes."""

    def __init__(self, model: nn.Module, spec: dict[str, Any], device: str | None,
                 address: str | None = None, workers: int | None = None) -> None:
        ray = require_ray()
        self.ray = ray
        self.started = connect(address, workers)
        self.actors, self.model_ref = start_actors(ray, _Worker, model, device, workers, spec)

    def run(self, jobs: Iterable[tuple]) -> Iterator[BlockResult]:
        """Blocks (dataset, kind, method, samples, images, targets, masks) → results."""
        ray = self.ray
        queue = deque(jobs)
        pending: dict[Any, tuple[Any, tuple]] = {}
        load = {a: 0 for a in self.actors}
        while queue or pending:
            for actor in list(load):
                while queue and load[actor] < IN_FLIGHT:
                    job = queue.popleft()
                    pending[actor.run.remote(*job)] = (actor, job)
                    load[actor] += 1
            if not pending:  # every actor is dead: the rest fail
                job = queue.popleft()
                yield _failed(job, "no Ray worker left")
                continue
            done, _ = ray.wait(list(pending), num_returns=1)
            actor, job = pending.pop(done[0])
            if actor in load:
                load[actor] -= 1
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayActorError as exc:  # retries spent: the actor is gone
                load.pop(actor, None)
                yield _failed(job, f"Ray worker died: {exc}")
            except ray.exceptions.RayError as exc:
                yield _failed(job, f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Stop the actors, and Ray itself when this executor started it."""
        for a in self.actors:
            self.ray.kill(a)
        if self.started:
            self.ray.shutdown()


def _on_cpu(model: nn.Module) -> bool:
    return all(t.device.type == "cpu" for t in list(model.parameters()) + list(model.buffers()))


def _failed(job: tuple, error: str) -> BlockResult:
    dataset, _, method, samples = job[:4]
    return BlockResult(dataset, method, list(samples),
                       errors=[{"metric": None, "sample": s, "error": error} for s in samples])
