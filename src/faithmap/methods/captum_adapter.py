"""Use any Captum attribution as a faithmap explainer: ``fm.from_captum(Cls, model, **kw)``.

Keyword arguments are split by the Captum class's constructor signature: those it
accepts (e.g. ``multiply_by_inputs``) build the Captum object, the rest go to its
``attribute()`` call (e.g. ``n_steps``, ``baselines`` — Captum's own names). ``layer`` may
be a module name. ``batch_size`` (rows per forward pass) becomes Captum's
``internal_batch_size`` where the class has one. Layer methods (Captum's
``LayerAttribution`` classes) are spatial: their N×C'×h×w attributions are summed over
channels and upsampled bilinearly to N×1×H×W; every other method must return the input's
shape. Callable targets are handled by scoring the model's output in a wrapper.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.batching import DEFAULT_BATCH_SIZE
from ..core.cost import Cost, check_shape, predicted
from ..core.explainer import Explainer
from ..core.layers import find_module
from ..core.registry import METHODS
from ..core.targets import Target


class _ScoreModel(nn.Module):
    """model followed by a callable target, as an N×1 output (for Captum)."""

    def __init__(self, model: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.model(x))[:, None]


def _captum_class(method: str | type) -> type:
    if isinstance(method, type):
        return method
    if not isinstance(method, str):
        raise TypeError(f"expected a Captum attribution class or its name, got {method!r}")
    try:
        import captum.attr as captum_attr
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Captum is not installed: pip install 'faithmap[compare]' (or pip install captum)"
        ) from exc
    cls = getattr(captum_attr, method, None)
    if not isinstance(cls, type):
        raise ValueError(f"captum.attr has no attribution class named {method!r}")
    return cls


def _is_layer_method(cls: type) -> bool:
    """True for Captum's layer attributions (subclasses of ``captum.attr.LayerAttribution``)."""
    if not any(c.__module__.startswith("captum") for c in cls.__mro__):
        return False  # not derived from Captum: no need (and maybe no Captum) to import
    from captum.attr import LayerAttribution

    return issubclass(cls, LayerAttribution)


#: Captum classes whose passes per sample are known: one forward + one backward ...
_ONE_GRADIENT = ("Saliency", "InputXGradient", "GuidedBackprop", "Deconvolution",
                 "LayerGradCam", "LayerGradientXActivation")
#: ... or ``n_steps`` of each (Captum's default 50).
_N_STEPS = ("IntegratedGradients", "LayerIntegratedGradients")


class CaptumExplainer(Explainer):
    """A Captum attribution class behind faithmap's explainer contract."""

    name = "captum"

    def __init__(self, captum_class: str | type, /, model: nn.Module, **options: Any) -> None:
        batch_size = options.pop("batch_size", DEFAULT_BATCH_SIZE)
        super().__init__(model, batch_size=batch_size)
        self.captum_class = _captum_class(captum_class)
        params = inspect.signature(self.captum_class.__init__).parameters
        self.layer_name: str | None = None
        if "layer" in options:
            self.layer_name, _ = find_module(model, options.pop("layer"))
        self.init_kwargs = {k: options.pop(k) for k in list(options) if k in params}
        self.attribute_kwargs = options
        if batch_size is not None and "internal_batch_size" in inspect.signature(
            self.captum_class.attribute
        ).parameters:
            self.attribute_kwargs.setdefault("internal_batch_size", batch_size)
        self.spatial = _is_layer_method(self.captum_class)  # type: ignore[misc] - per instance

    def cost(self, x_shape, target=None) -> Cost | None:
        """Exact, for the Captum classes whose passes are known from their options: one
        forward + one backward (Saliency, InputXGradient, GuidedBackprop, Deconvolution,
        LayerGradCam, LayerGradientXActivation) or ``n_steps`` of each (IntegratedGradients,
        LayerIntegratedGradients; + 2 forwards with ``return_convergence_delta``), + 1
        forward for a ``None`` target; None (not known beforehand) for the others."""
        check_shape(x_shape)
        name = self.captum_class.__name__
        if not self.captum_class.__module__.startswith("captum"):
            return None
        resolve = int(predicted(target))
        if name in _ONE_GRADIENT:
            return Cost(1 + resolve, 1)
        if name in _N_STEPS:
            steps = int(self.attribute_kwargs.get("n_steps", 50))
            delta = 2 * int(bool(self.attribute_kwargs.get("return_convergence_delta", False)))
            return Cost(steps + delta + resolve, steps)
        return None

    def _build(self, forward: nn.Module) -> Any:
        args: list[Any] = [forward]
        if self.layer_name is not None:  # resolved by name: works on model copies
            args.append(find_module(self.model, self.layer_name)[1])
        return self.captum_class(*args, **self.init_kwargs)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        if target.fn is not None:
            forward: nn.Module = _ScoreModel(self.model, target.fn)
            captum_target: Any = 0
        else:
            forward = self.model
            target.resolve_with(self.model, x)
            captum_target = target.indices.to(x.device)
        with warnings.catch_warnings():  # Captum sets requires_grad on our private copy
            warnings.filterwarnings("ignore", message=".*did not already require gradients")
            result = self._build(forward).attribute(
                x.clone(), target=captum_target, **self.attribute_kwargs
            )
        if isinstance(result, tuple):
            result, delta = result
            self.metadata["convergence_delta"] = delta.detach()
        attr = result.detach()
        if not self.spatial:
            if attr.shape != x.shape:
                raise ValueError(
                    f"{self.captum_class.__name__} returned shape {tuple(attr.shape)}, not the "
                    f"input shape {tuple(x.shape)} (only Captum's layer methods may differ)"
                )
            return attr
        if attr.dim() == 4:
            attr = attr.sum(dim=1, keepdim=True)
            return F.interpolate(attr, size=x.shape[2:], mode="bilinear", align_corners=False)
        raise ValueError(
            f"{self.captum_class.__name__} returned shape {tuple(attr.shape)}, which cannot be "
            f"mapped to an N×1×H×W map of the input shape {tuple(x.shape)}"
        )

    def __repr__(self) -> str:
        return f"CaptumExplainer({self.captum_class.__name__}, model={type(self.model).__name__})"


def from_captum(captum_class: str | type, /, model: nn.Module, **options: Any) -> CaptumExplainer:
    """Wrap a Captum attribution class (or its name in ``captum.attr``) as an explainer."""
    return CaptumExplainer(captum_class, model, **options)


METHODS.register_prefix("captum:", from_captum)
