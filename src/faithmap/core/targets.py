"""Target resolution: which output score an explanation is about.

A target is ``None`` (the model's predicted class), an ``int``, a sequence or 1-D
integer tensor of N class indices, or a callable ``output -> scores`` returning one
score per row of the output (segmentation, detection, custom objectives). A callable
is applied to every forward pass of a method, also to the multiplied batches of
Integrated Gradients or SmoothGrad, so it must score each row from that row alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import numpy as np
import torch
from torch import nn

from .errors import TargetError
from .modules import logits_hint

TargetLike = Union[  # noqa: UP007 - a runtime alias, kept readable
    None, int, Sequence[int], torch.Tensor, Callable[[torch.Tensor], torch.Tensor]
]


class Target:
    """A validated target for a batch of ``n`` samples.

    ``indices`` is ``None`` until resolved for a ``None`` target, a LongTensor of N
    class indices otherwise; ``fn`` is set for callable targets.
    """

    def __init__(self, target: TargetLike, n: int) -> None:
        self.n = n
        self.fn: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.indices: torch.Tensor | None = None
        if target is None:
            return
        if callable(target) and not isinstance(target, torch.Tensor):
            self.fn = target
            return
        self.indices = _as_indices(target, n)

    @property
    def needs_prediction(self) -> bool:
        """True when the target is the predicted class and has not been resolved yet."""
        return self.fn is None and self.indices is None

    def resolve(self, output: torch.Tensor) -> Target:
        """Fix a ``None`` target to the argmax of ``output`` (the model's output at the inputs)."""
        if self.needs_prediction:
            _check_logits(output, self.n)
            self.indices = output.detach().argmax(dim=1).cpu()
        return self

    def resolve_with(self, model: nn.Module, x: torch.Tensor) -> Target:
        """Resolve a ``None`` target with one gradient-free forward pass when needed."""
        if self.needs_prediction:
            with torch.no_grad():
                self.resolve(model(x))
        return self

    def scores(self, output: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """One score per row of ``output``.

        ``rows`` maps each output row to its sample index (for multiplied batches);
        by default row ``i`` is sample ``i``. A ``None`` target is resolved from this
        output, which must then be the output at the inputs themselves.
        """
        if self.fn is None and not isinstance(output, torch.Tensor):
            _check_logits(output, self.n)  # a model output object: say to wrap the model
        if self.fn is not None:
            scores = self.fn(output)
            if not isinstance(scores, torch.Tensor) or scores.shape != (output.shape[0],):
                shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores)
                raise TargetError(
                    f"a callable target must return one score per row, shape "
                    f"({output.shape[0]},); got {shape}"
                )
            return scores
        if rows is None and output.shape[0] != self.n:
            raise TargetError(f"expected {self.n} output rows, got {output.shape[0]}")
        if rows is not None and self.needs_prediction:
            raise RuntimeError("resolve a None target before scoring a multiplied batch")
        self.resolve(output)
        _check_logits(output, output.shape[0])
        assert self.indices is not None
        n_classes = output.shape[1]
        if int(self.indices.max()) >= n_classes:
            bad = int(self.indices.max())
            raise TargetError(
                f"target class {bad} is out of range for a model with {n_classes} outputs "
                f"(valid: 0..{n_classes - 1})"
            )
        idx = self.indices.to(output.device)
        if rows is not None:
            idx = idx[rows.to(output.device)]
        return output.gather(1, idx[:, None]).squeeze(1)

    def index_list(self) -> list[int] | None:
        """Class indices as a Python list (``None`` for callable targets)."""
        return None if self.indices is None else self.indices.tolist()


def row_targets(target: Target, samples: torch.Tensor) -> TargetLike:
    """The target of the rows of a multiplied batch (``samples``: the sample of each row)."""
    if target.fn is not None:
        return target.fn
    assert target.indices is not None
    return target.indices[samples.cpu()]


def _as_indices(target: object, n: int) -> torch.Tensor:
    if isinstance(target, bool):
        raise TargetError("target must be an int class index, not a bool")
    if isinstance(target, (int, np.integer)):
        idx = torch.full((n,), int(target), dtype=torch.long)
    else:
        if isinstance(target, torch.Tensor):
            t = target.detach().cpu()
        else:
            try:
                t = torch.as_tensor(np.asarray(target))
            except (TypeError, ValueError) as exc:
                raise TargetError(f"cannot interpret target {target!r}: {exc}") from exc
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
            raise TargetError(f"target must hold integer class indices, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(n)
        if t.dim() != 1:
            raise TargetError(f"target must be 1-D with one class per sample, got {tuple(t.shape)}")
        if t.numel() != n:
            raise TargetError(f"target has {t.numel()} entries but the batch has {n} samples")
        idx = t.long().clone()
    if bool((idx < 0).any()):
        raise TargetError(f"target class indices must be >= 0, got {int(idx.min())}")
    return idx


def _check_logits(output: torch.Tensor, n: int) -> None:
    if not isinstance(output, torch.Tensor):
        raise TargetError(
            logits_hint(output)
            or f"the model returned {type(output).__name__}; class-index targets need an N×K "
            "tensor of scores (pass a callable target to pick a score from other outputs)"
        )
    if output.dim() != 2 or output.shape[0] != n:
        raise TargetError(
            f"class-index targets need model outputs of shape N×K; got {tuple(output.shape)} "
            "(pass a callable target `output -> N scores` for other output shapes)"
        )
