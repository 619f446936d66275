"""The black-box classifier: trained on full images, then COMET's frozen detector f_D and
the accuracy reference (the paper's black-box ResNet-18; here a small CNN)."""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.batching import check_batch_size, chunks
from ..core.deprecation import renamed_options
from ..core.validation import check_positive_int
from ..zoo.small_cnn import SmallCNN
from .validation import check_data, classifier_config


@renamed_options(batch="batch_size")
@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int | None = 256) -> float:
    """Top-1 accuracy in eval mode (the training flag is restored), ``batch_size`` images
    per forward pass."""
    check_batch_size(batch_size)
    was = model.training
    model.eval()
    try:
        hits = sum(int((model(images[rows]).argmax(1) == labels[rows]).sum())
                   for rows in chunks(len(images), batch_size))
    finally:
        model.train(was)
    return hits / max(len(images), 1)


def train_classifier(
    train_data: tuple[torch.Tensor, torch.Tensor],
    val_data: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int = 6,
    widths: tuple[int, ...] = (16, 32, 64),
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
) -> tuple[SmallCNN, dict[str, Any]]:
    """AdamW + one-cycle cross-entropy training; returns the best-validation model (eval)
    and its config (with the per-epoch history)."""
    x_tr, y_tr = check_data(train_data, "train_data")
    x_va, y_va = check_data(val_data, "val_data", channels=x_tr.shape[1])
    cfg = classifier_config(x_tr, y_tr, widths)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(cfg["in_channels"], cfg["num_classes"], widths, cfg["mean"],
                         cfg["std"], cfg["stem_stride"])
    check_positive_int("batch_size", batch_size)
    steps = -(-len(x_tr) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * steps)
    history: list[dict[str, float]] = []
    best_acc, best_state = -1.0, None
    for epoch in range(epochs):
        tic = time.perf_counter()
        order = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(
            seed * 1_000_003 + epoch))
        model.train()
        total = 0.0
        for chunk in tqdm(chunks(len(x_tr), batch_size), total=steps,
                          desc=f"black box epoch {epoch + 1}/{epochs}", disable=not progress,
                          leave=False):
            rows = order[chunk]
            loss = F.cross_entropy(model(x_tr[rows]), y_tr[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(rows)
        acc = accuracy(model, x_va, y_va)
        history.append({"epoch": epoch + 1, "loss": total / len(x_tr), "val_acc": acc,
                        "seconds": time.perf_counter() - tic})
        if progress:
            tqdm.write(f"black box epoch {epoch + 1}: loss={total / len(x_tr):.4f} "
                       f"val_acc={acc:.4f}")
        if acc > best_acc:
            best_acc, best_state = acc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    cfg.update({"history": history, "val_acc": best_acc, "epochs": epochs, "seed": seed,
                "lr": lr, "batch_size": batch_size})
    return model.eval(), cfg
