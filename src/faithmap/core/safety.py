"""Model safety: an explainer never changes the user's model (DESIGN.md §1).

:func:`model_guard` wraps every explainer call. On entry it refuses a model in
training mode that has dropout or batch-norm (its output would depend on the batch
and on chance). On exit — also when the call raised — it restores every module's
``training`` flag, every parameter's ``requires_grad`` flag and ``.grad``, every
module's plain attributes and child modules, and removes any hook registered during
the call. Parameters and buffers are checked through their version counters: an
in-place change to them is reported with a warning (it cannot be undone cheaply).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from .errors import ModelModeError

_STOCHASTIC_OR_BATCH_DEPENDENT = (
    nn.modules.dropout._DropoutNd,
    nn.modules.batchnorm._NormBase,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
)
_PLAIN = (bool, int, float, str, type(None), tuple)


def _is_plain(name: str, value: object) -> bool:
    return not name.startswith("_") and name != "training" and isinstance(value, _PLAIN)


def check_eval_mode(model: nn.Module) -> None:
    """Raise :class:`ModelModeError` if a training-mode model has dropout or batch-norm."""
    offenders = [
        name or "<root>"
        for name, m in model.named_modules()
        if m.training and isinstance(m, _STOCHASTIC_OR_BATCH_DEPENDENT)
    ]
    if offenders:
        shown = ", ".join(offenders[:5]) + (", ..." if len(offenders) > 5 else "")
        raise ModelModeError(
            f"the model is in training mode and has dropout/batch-norm layers ({shown}); "
            "explanations would depend on the batch and on chance. Call model.eval() first."
        )


class _Snapshot:
    """Everything :func:`model_guard` restores or checks, taken on entry (kept cheap)."""

    def __init__(self, model: nn.Module) -> None:
        self.modules = list(model.modules())
        self.training = [m.training for m in self.modules]
        self.n_attributes = [len(vars(m)) for m in self.modules]
        self.attributes = [
            {k: v for k, v in vars(m).items() if k[0] != "_" and _is_plain(k, v)}
            for m in self.modules
        ]
        self.children = [dict(m._modules) for m in self.modules]
        self.hooks = [
            {d: list(h) for d in _HOOK_DICTS if (h := getattr(m, d, None))}
            for m in self.modules
        ]
        self.params = list(model.named_parameters(remove_duplicate=True))
        self.requires_grad = [p.requires_grad for _, p in self.params]
        self.grads = [p.grad for _, p in self.params]
        self.tensors = self.params + list(model.named_buffers(remove_duplicate=True))
        self.versions = [t._version for _, t in self.tensors]

    def restore(self) -> list[str]:
        """Undo temporary edits; return the names of parameters/buffers changed in place."""
        for i, m in enumerate(self.modules):
            if m._modules != self.children[i]:
                m._modules.clear()
                m._modules.update(self.children[i])
            saved_hooks = self.hooks[i]
            for d in _HOOK_DICTS:
                hooks: dict[int, Any] | None = getattr(m, d, None)
                if hooks:
                    keep = saved_hooks.get(d, ())
                    for k in [k for k in hooks if k not in keep]:
                        del hooks[k]
            self._restore_attributes(m, i)
            if m.training != self.training[i]:
                m.training = self.training[i]
        for (_, p), rg, g in zip(self.params, self.requires_grad, self.grads):
            if p.requires_grad != rg:
                p.requires_grad_(rg)
            if p.grad is not g:
                p.grad = g
        return [
            name for (name, t), v in zip(self.tensors, self.versions) if t._version != v
        ]

    def _restore_attributes(self, m: nn.Module, i: int) -> None:
        attributes = vars(m)
        saved = self.attributes[i]
        if len(attributes) != self.n_attributes[i]:
            for k in [k for k, v in attributes.items() if k not in saved and _is_plain(k, v)]:
                delattr(m, k)
        for k, v in saved.items():
            if attributes.get(k, _MISSING) is not v:
                object.__setattr__(m, k, v)


_MISSING = object()


@contextmanager
def model_guard(model: nn.Module) -> Iterator[nn.Module]:
    """Run an explainer on ``model`` and leave it exactly as it was (see module doc)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_eval_mode(model)
    snapshot = _Snapshot(model)
    try:
        yield model
    finally:
        changed = snapshot.restore()
        if changed:
            warnings.warn(
                "the model's forward pass changed parameters/buffers in place: "
                + ", ".join(changed[:5]),
                RuntimeWarning,
                stacklevel=3,
            )
