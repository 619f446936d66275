"""Training and validation splits for COMET: the cluttered-MNIST benchmark (digits from
the training split; validation canvases use held-out digits) or any bundled dataset."""

from __future__ import annotations

import torch

from .. import data as fm_data

Split = tuple[torch.Tensor, torch.Tensor]


def splits(name: str = "cluttered", n_train: int = 4000, n_val: int = 500, seed: int = 0,
           val_digits: int = 500, canvas: int = 56) -> tuple[Split, Split]:
    """``(train, val)`` pairs (images in [0, 1], labels).

    ``"cluttered"``: :func:`faithmap.data.cluttered` canvases; ``val_digits`` training
    digits (a seeded draw) are held out and only they appear on validation canvases. The
    test split stays untouched for evaluation. Other names: the bundled dataset's training
    split, a seeded shuffle, first ``n_val`` for validation, next ``n_train`` for training.
    """
    if n_train < 1 or n_val < 1:
        raise ValueError(f"n_train and n_val must be >= 1, got {n_train}, {n_val}")
    if name == "cluttered":
        images, labels = fm_data.load("mnist", split="train")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        held, kept = order[:val_digits], order[val_digits:]
        tr = fm_data.cluttered((images[kept], labels[kept]), canvas=canvas, count=n_train,
                               seed=seed)
        va = fm_data.cluttered((images[held], labels[held]), canvas=canvas, count=n_val,
                               seed=seed + 1)
        return (tr.images, tr.labels), (va.images, va.labels)
    if name not in fm_data.names():
        raise ValueError(f"unknown dataset {name!r}: use 'cluttered' or one of "
                         f"{fm_data.names()}")
    images, labels = fm_data.load(name, split="train")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    va, tr = order[:n_val], order[n_val:n_val + n_train]
    return (images[tr], labels[tr]), (images[va], labels[va])


def test_set(n: int = 500, seed: int = 0, canvas: int = 56) -> fm_data.ClutteredBenchmark:
    """Cluttered canvases of MNIST *test* digits (as ``fm.evaluate``'s ``"cluttered"``)."""
    return fm_data.cluttered("mnist", canvas=canvas, count=n, split="test", seed=seed)
