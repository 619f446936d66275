"""Deterministic CPU training recipe that reproduces each shipped zoo checkpoint."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.pgd import pgd_l2
from ..core.batching import chunks
from ..core.deprecation import renamed_options
from ..data import info as data_info
from ..data import load as load_data
from .registry import SPECS, _files, _spec, load_state


@contextmanager
def deterministic(threads: int = 1) -> Iterator[None]:
    """Deterministic algorithms and a fixed thread count, restored on exit."""
    prev_threads, prev_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def augment(x: torch.Tensor, g: torch.Generator, shift: float = 2.0, degrees: float = 10.0):
    """Random per-sample translation (± ``shift`` px) and rotation (± ``degrees``)."""
    n, _, h, w = x.shape
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(degrees)
    t = (torch.rand(n, 2, generator=g) * 2 - 1) * shift * 2 / torch.tensor([w, h])
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1),
                         torch.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (used as it is: call ``.eval()`` first)."""
    hits = sum(int((model(x[rows]).argmax(1) == y[rows]).sum())
               for rows in chunks(len(x), batch_size))
    return hits / len(x)


@renamed_options(eps="radius")
def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, radius: float,
                    steps: int = 10, seed: int = 0) -> float:
    """Accuracy under a PGD-L2 attack of ``radius`` (``steps`` steps, random start;
    ``eps`` is the deprecated name of ``radius``)."""
    g = torch.Generator().manual_seed(seed)
    return accuracy(model, pgd_l2(model, x, y, radius, steps, generator=g), y)


def adversarial_radius(adversarial: dict[str, Any], default: float | None = None) -> float:
    """The PGD-L2 radius of a recipe's ``adversarial`` dict (recorded as ``"eps"`` in the
    shipped specs and model cards; ``"radius"`` is read first)."""
    value = adversarial.get("radius", adversarial.get("eps", default))
    if value is None:
        raise KeyError("the adversarial recipe has no 'radius' (or 'eps')")
    return float(value)


def _fit(name: str, seed: int, epochs: int, log: bool) -> nn.Module:
    spec = _spec(name)
    x, y = load_data(spec.dataset, "train")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.build()
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(x) / spec.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, spec.lr, total_steps=epochs * steps_per_epoch)
    model.train()
    for epoch in range(epochs):
        perm, total = torch.randperm(len(x), generator=g), 0.0
        for rows in chunks(len(x), spec.batch_size):
            idx = perm[rows]
            xb, yb = augment(x[idx], g), y[idx]
            if spec.adversarial:
                xb = pgd_l2(model, xb, yb, adversarial_radius(spec.adversarial),
                            int(spec.adversarial["steps"]), generator=g)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log:
            print(f"{name} epoch {epoch + 1}/{epochs} loss {total / len(x):.4f}", flush=True)
    return model.eval()


def train(
    name: str,
    out_dir: str | Path | None = None,
    seed: int = 0,
    epochs: int | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Retrain zoo model ``name`` deterministically (seeded, CPU, 1 thread) on the train
    split, evaluate the float16-stored weights on the test split and return the model card.

    With ``out_dir``, ``NAME.pt`` (float16 state dict) and ``NAME.json`` (card) are written
    there; load them back with ``faithmap.zoo.load(name, weights_dir=out_dir)``.
    """
    spec = _spec(name)
    epochs = epochs or spec.epochs
    start = time.perf_counter()
    with deterministic():
        model = _fit(name, seed, epochs, verbose)
        seconds = time.perf_counter() - start
        state = {k: v.half() if v.is_floating_point() else v
                 for k, v in model.state_dict().items()}
        folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp())
        folder.mkdir(parents=True, exist_ok=True)
        weights, card_path = _files(name, folder)
        torch.save(state, weights)
        stored = load_state(spec.build(), weights).eval()
        xt, yt = load_data(spec.dataset, "test")
        radius = adversarial_radius(spec.adversarial, default=1.0)
        card = {
            "name": name,
            "architecture": spec.architecture,
            "module": type(stored).__name__,
            "parameters": sum(p.numel() for p in stored.parameters()),
            "dataset": spec.dataset,
            "train_split": data_info(spec.dataset).split_rule,
            "input_size": spec.input_size,
            "input_range": "[0, 1]; normalisation is the model's first module",
            "normalization": {"mean": stored.normalize.mean.flatten().tolist(),
                              "std": stored.normalize.std.flatten().tolist()},
            "class_names": list(data_info(spec.dataset).class_names),
            "test_accuracy": accuracy(stored, xt, yt),
            "pgd_l2_test_accuracy": {"eps": radius, "steps": 10,  # the card's recorded key
                                     "accuracy": robust_accuracy(stored, xt, yt, radius)},
            "training_command": f"faithmap zoo train {name}",
            "recipe": {"seed": seed, "epochs": epochs, "optimizer": "AdamW + OneCycle",
                       "lr": spec.lr, "batch_size": spec.batch_size,
                       "weight_decay": spec.weight_decay,
                       "augmentation": "random shift ±2 px, rotation ±10°",
                       "adversarial": ({"attack": "pgd_l2", **spec.adversarial}
                                       if spec.adversarial else None),
                       "threads": 1, "deterministic": True},
            "train_seconds": round(seconds, 1),
            "weights_file": weights.name,
            "weights_dtype": "float16",
            "weights_bytes": weights.stat().st_size,
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "torch_version": torch.__version__,
        }
        if out_dir is None:
            shutil.rmtree(folder)
        else:
            card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def train_all(out_dir: str | Path, seed: int = 0, verbose: bool = False) -> list[dict[str, Any]]:
    """Retrain every zoo model into ``out_dir``."""
    return [train(name, out_dir, seed, verbose=verbose) for name in SPECS]
