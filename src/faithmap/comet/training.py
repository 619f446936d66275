"""``train``: fit a COMET model (or a variant) with best-checkpoint selection and resume.

Recipe [reference code]: AdamW (lr 5e-4, weight decay 0.03) on selector and predictor,
both updated every batch, linear warm-up, step decay; the best epoch by validation
accuracy of f_P(x_s) is kept. Every random draw comes from generators seeded by
(seed, epoch), and the checkpoint stores the RNG states, so a resumed run reproduces an
uninterrupted one exactly (same device and thread count).
"""

from __future__ import annotations

import copy
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..core.batching import chunks
from ..zoo.checkpoints import read_checkpoint, write_checkpoint
from .model import ComprehensiveAttributionModel
from .objective import Objective
from .steps import VARIANTS, route_gradients, validate
from .validation import check_data, classifier_config


@dataclass
class TrainResult:
    """The best model (eval mode), the per-epoch log, and the best epoch's facts."""

    model: ComprehensiveAttributionModel
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_acc: float
    config: dict[str, Any] = field(default_factory=dict)


def fingerprint(module: nn.Module | None) -> str | None:
    """A 16-hex-digit hash of the module's state dict (names and float32 values): the
    ``"detector"`` a COMET checkpoint records, compared against the model it explains."""
    if module is None:
        return None
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


def _lr(cfg: dict, epoch: int, step: int, steps: int) -> float:
    done = epoch + step / steps
    if done < cfg["warmup_epochs"]:
        return cfg["lr"] * (step + 1 + epoch * steps) / (cfg["warmup_epochs"] * steps)
    return cfg["lr"] * cfg["decay"] ** ((epoch - cfg["warmup_epochs"]) // cfg["decay_every"]
                                        if epoch >= cfg["warmup_epochs"] else 0)


def _stage(cfg: dict, epoch: int) -> str:
    if cfg["variant"] == "realx" and epoch < cfg["realx_eval_epochs"]:
        return "realx_eval"
    return cfg["variant"]


def train(
    train_data: tuple[torch.Tensor, torch.Tensor],
    val_data: tuple[torch.Tensor, torch.Tensor],
    detector: nn.Module | None = None,
    *,
    epochs: int = 10,
    tau: float = 0.6,
    a: float = 4.0,
    gamma: float = 2.0,
    b: float = 100.0,
    form: str = "bounded",
    hinge: str = "sample",
    variant: str = "comet",
    selector: str = "unet",
    selector_widths: tuple[int, ...] = (8, 16, 32),
    selector_scale: int = 2,
    predictor_widths: tuple[int, ...] = (16, 32, 64),
    batch_size: int = 64,
    lr: float = 5e-4,
    weight_decay: float = 0.03,
    warmup_epochs: int = 2,
    decay_every: int = 10,
    decay: float = 0.1,
    realx_lambda: float = 0.2,
    realx_eval_epochs: int = 3,
    fill: float | None = None,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train COMET (Zhang, Lee, Wang, ECCV 2024) on ``(images N×C×H×W in [0,1], labels)``.

    ``detector``: the frozen black-box classifier f_D (needed except for
    ``variant="no_detector"``; for ``"posthoc"`` it is also the predictor and must be a
    :class:`~faithmap.zoo.small_cnn.SmallCNN`; for ``"realx"`` it is the black box the
    selector imitates). It is used in eval mode and never changed. Selector loss: see
    :mod:`faithmap.comet.objective` (``form="bounded"`` default, ``"paper"`` option;
    ``hinge="sample"`` default, ``"batch"`` = the authors' code);
    ``variant="no_detector"`` forces a = 0. ``fill`` q defaults to the training mean.
    ``checkpoint_dir`` receives ``last.pt`` (full training state, every epoch) and
    ``best.pt``; ``resume`` continues from a ``last.pt`` up to ``epochs``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}")
    if variant != "no_detector" and detector is None:
        raise ValueError(f"variant {variant!r} needs a frozen detector (detector=...)")
    if variant == "posthoc" and not hasattr(detector, "features"):
        raise ValueError("variant 'posthoc' uses the detector as predictor: pass a "
                         "faithmap.comet SmallCNN (e.g. comet.load_classifier(...))")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    x_tr, y_tr = check_data(train_data, "train_data")
    x_va, y_va = check_data(val_data, "val_data", channels=x_tr.shape[1])
    obj = Objective(a=0.0 if variant == "no_detector" else a, gamma=gamma, b=b, tau=tau,
                    form=form, hinge=hinge)
    cfg = {**classifier_config(x_tr, y_tr, predictor_widths), "selector": selector,
           "selector_widths": list(selector_widths), "selector_scale": selector_scale,
           "variant": variant,
           "objective": obj.to_dict(), "fill": float(x_tr.mean()) if fill is None else fill,
           "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
           "warmup_epochs": warmup_epochs, "decay_every": decay_every, "decay": decay,
           "realx_lambda": realx_lambda, "realx_eval_epochs": realx_eval_epochs, "seed": seed,
           "n_train": len(x_tr), "n_val": len(x_va), "detector": fingerprint(detector)}
    if variant == "posthoc":
        cfg["predictor_widths"] = list(detector.widths)
        cfg["mean"], cfg["std"] = detector.mean_std
        cfg["stem_stride"] = detector.stem_stride
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ComprehensiveAttributionModel(cfg)
    if variant == "posthoc":
        model.predictor.load_state_dict(detector.state_dict())
    frozen = variant in ("posthoc", "realx")
    groups = [{"params": list(model.selector.parameters())}]
    if variant != "posthoc":
        groups.append({"params": list(model.predictor.parameters())})
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    history: list[dict[str, Any]] = []
    best = {"epoch": -1, "acc": -1.0, "state": None}
    start = 0
    if resume is not None:
        state = read_checkpoint(resume, "comet_training")
        diff = {k for k in cfg if k != "detector" and state["config"].get(k) != cfg[k]}
        if diff or state["config"]["detector"] != cfg["detector"]:
            raise ValueError(f"cannot resume {resume}: settings differ in "
                             f"{sorted(diff) or ['detector weights']}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, best, start = state["history"], state["best"], state["epoch"]
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        name, keys, pos, has_gauss, cached = state["rng"]["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    say = log or tqdm.write
    det_mode = None if detector is None else detector.training
    if detector is not None:
        detector.eval()
    try:
        for epoch in range(start, epochs):
            stage = _stage(cfg, epoch)
            tic = time.perf_counter()
            gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            order = torch.randperm(len(x_tr), generator=gen)
            steps = -(-len(x_tr) // batch_size)
            model.train()
            if frozen and stage != "realx_eval":
                model.predictor.eval()  # a frozen predictor keeps its BatchNorm statistics
            sums: dict[str, float] = {}
            bar = tqdm(enumerate(chunks(len(x_tr), batch_size)), total=steps,
                       desc=f"{variant} epoch {epoch + 1}/{epochs}", disable=not progress,
                       leave=False)
            for step, chunk in bar:
                rows = order[chunk]
                for group in opt.param_groups:
                    group["lr"] = _lr(cfg, epoch, step, steps)
                opt.zero_grad(set_to_none=True)
                terms = route_gradients(stage, model, detector, x_tr[rows], y_tr[rows], obj,
                                        realx_lambda=realx_lambda, generator=gen)
                opt.step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v * len(rows)
                bar.set_postfix(loss=f"{terms['loss']:.3f}", area=f"{terms['area']:.3f}")
            entry = {"epoch": epoch + 1, "stage": stage,
                     **{k: v / len(x_tr) for k, v in sums.items()},
                     **validate(model, detector, x_va, y_va),
                     "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - tic}
            history.append(entry)
            if stage == variant and entry["val_acc"] > best["acc"]:
                best = {"epoch": epoch + 1, "acc": entry["val_acc"],
                        "state": copy.deepcopy(model.state_dict())}
            say(_format(entry))
            if checkpoint_dir is not None:
                _save(Path(checkpoint_dir), model, opt, cfg, history, best, epoch + 1)
    finally:
        if detector is not None:
            detector.train(det_mode)
    final = ComprehensiveAttributionModel(cfg)
    final.load_state_dict(best["state"] if best["state"] is not None else model.state_dict())
    return TrainResult(final.eval(), history, best["epoch"], best["acc"], cfg)


def _format(e: dict) -> str:
    keys = ("loss_p", "loss_d", "hinge", "complement_hits", "kl", "area", "val_acc",
            "val_area", "val_complement_acc")
    parts = [f"{k}={e[k]:.4f}" for k in keys if k in e]
    return f"epoch {e['epoch']} [{e['stage']}] " + " ".join(parts) + f" ({e['seconds']:.1f}s)"


def _save(folder: Path, model: nn.Module, opt: torch.optim.Optimizer, cfg: dict,
          history: list, best: dict, epoch: int) -> None:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
           "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]}
    write_checkpoint(folder / "last.pt", {
        "kind": "comet_training", "config": cfg, "model": model.state_dict(),
        "optimizer": opt.state_dict(), "history": history, "best": best, "epoch": epoch,
        "rng": rng})
    if best["epoch"] == epoch:
        model.save(folder / "best.pt", card={"epoch": epoch, "val_acc": best["acc"]})
