"""LRP baselines from Zennit: ``fm.from_zennit("EpsilonPlusFlat", model)``.

Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019) through a Zennit
composite. The output relevance is the target logit, ``R_out = f_y(x)`` (as Captum's LRP and
SRD start), so for a conservative composite Σ R ≈ f_y(x) up to what biases and stabilisers
absorb; the ratio is reported per sample in ``metadata["relevance_ratio"]``.

The composite is applied to a private deep copy of the model, with in-place activations
switched off (Zennit's hooks cannot follow an in-place ReLU) and Zennit's canonizers
(``canonizers="auto"``: batch norm merged into the preceding conv/linear; torchvision
ResNets get Zennit's ResNet canonizer, which routes residual sums through a rule, and
blocks declared as :class:`~faithmap.core.modules.ResidualBlock` the same). ``Normalize``
passes relevance through unchanged (without that, autograd would scale it by 1/std). The
user's model is never hooked or modified. Batch norms a canonizer could not merge are named in
``metadata["unmerged_batchnorm"]``: they and residual adds without a ``Sum`` rule pass
relevance as a plain gradient would, so conservation then does not hold.

``EpsilonGammaBox`` needs the lowest and highest input values seen by the first layer; by
default they are the input box ``bounds=(0, 1)`` (scalars or per channel, parsed by
:func:`~faithmap.core.geometry.as_box`) pushed through a leading
:class:`~faithmap.core.modules.Normalize` (the zoo's and ``fm.zoo.torchvision``'s models).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
from torch import nn

from ..core.autograd import input_gradient
from ..core.batching import DEFAULT_BATCH_SIZE
from ..core.cost import Cost, check_shape, predicted
from ..core.deprecation import renamed_attribute, renamed_options
from ..core.errors import UnsupportedLayerError
from ..core.explainer import Explainer
from ..core.geometry import BoundsLike, Box, as_box
from ..core.modules import Normalize, ResidualBlock
from ..core.registry import METHODS
from ..core.targets import Target


def _zennit() -> Any:
    try:
        import zennit.canonizers
        import zennit.composites
        import zennit.layer
        import zennit.torchvision
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Zennit is not installed: pip install 'faithmap[compare]' (or pip install zennit)"
        ) from exc
    return zennit


def _composite_class(name: str) -> type:
    composites = _zennit().composites
    registered = getattr(composites, "COMPOSITES", {})
    key = name.strip()
    cls = registered.get(key.lower()) or getattr(composites, key, None)
    if isinstance(cls, type) and issubclass(cls, composites.Composite):
        return cls
    known = sorted(registered) + sorted(c.__name__ for c in registered.values())
    raise ValueError(f"zennit has no composite named {name!r}; known: {', '.join(known)}")


class _PassNormalize(torch.autograd.Function):
    """``(x − mean) / std`` forward; relevance passes through unchanged (an affine
    per-pixel map moves relevance, it does not redistribute it)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return (x - mean) / std

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return grad, None, None


def _pass_normalize(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _PassNormalize.apply(x, self.mean, self.std)


def _check_bounds(bounds: BoundsLike) -> BoundsLike:
    """``bounds`` validated without an input: a pair of scalars or of equal-length
    per-channel values with lo < hi (as :func:`~faithmap.core.geometry.as_box` parses it)."""
    try:
        lo, hi = bounds
        channels = max(torch.as_tensor(lo).numel(), torch.as_tensor(hi).numel())
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"bounds must be a pair (lo, hi), got {bounds!r}") from exc
    as_box(bounds, torch.zeros(1, channels, 1, 1), check=False)
    return bounds


def _box(model: nn.Module, bounds: BoundsLike, x: torch.Tensor) -> Box:
    """The input box as the first layer sees it (through the model's first Normalize),
    per channel of ``x``."""
    low, high = as_box(bounds, x, check=False)  # type: ignore[misc]
    normalize = next((m for m in model.modules() if isinstance(m, Normalize)), None)
    if normalize is not None:
        with torch.no_grad():
            low = (low.to(normalize.mean) - normalize.mean) / normalize.std
            high = (high.to(normalize.mean) - normalize.mean) / normalize.std
    return low, high


def _residual_block_forward(self: ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    """A declared residual block with its skip sum routed through a Zennit ``Sum`` module."""
    shortcut, residual = self.branches(x)
    return self.merge(self.canonizer_sum(torch.stack([shortcut, residual], dim=-1)))


def _residual_block_attributes(name: str, module: nn.Module) -> dict[str, Any] | None:
    if isinstance(module, ResidualBlock):
        return {"forward": _residual_block_forward.__get__(module),
                "canonizer_sum": _zennit().layer.Sum()}
    return None


def _canonizers(model: nn.Module) -> list[Any]:
    """Zennit's ResNet canonizer for torchvision ResNets, the same for declared ResidualBlocks,
    and batch-norm merging everywhere."""
    zennit = _zennit()
    from torchvision.models.resnet import BasicBlock, Bottleneck

    if any(isinstance(m, (BasicBlock, Bottleneck)) for m in model.modules()):
        return [zennit.torchvision.ResNetCanonizer()]
    return [zennit.canonizers.SequentialMergeBatchNorm(),
            zennit.canonizers.AttributeCanonizer(_residual_block_attributes)]


def _unmerged_batchnorm(model: nn.Module) -> list[str]:
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_var is not None:
            identity = (torch.all(module.running_var == 1) and torch.all(module.running_mean == 0)
                        and (module.weight is None or torch.all(module.weight == 1))
                        and (module.bias is None or torch.all(module.bias == 0)))
            if not bool(identity):
                names.append(name)
    return names


class ZennitExplainer(Explainer):
    """An LRP composite from Zennit behind faithmap's explainer contract (N×C×H×W relevance).

    ``bounds``: the input box for box rules (``input_bounds`` is its deprecated name);
    ``batch_size``: samples per forward/backward pass through the hooked copy."""

    name = "zennit"

    @renamed_options(input_bounds="bounds")
    def __init__(
        self,
        composite: str | type | Any,
        /,
        model: nn.Module,
        *,
        canonizers: str | list[Any] | None = "auto",
        bounds: BoundsLike = (0.0, 1.0),
        batch_size: int | None = DEFAULT_BATCH_SIZE,
        **composite_options: Any,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        zennit = _zennit()
        if isinstance(composite, zennit.composites.Composite):
            if composite_options:
                raise TypeError("options cannot be combined with a composite instance")
            self.composite_class, self.composite_instance = type(composite), composite
        else:
            cls = _composite_class(composite) if isinstance(composite, str) else composite
            if not (isinstance(cls, type) and issubclass(cls, zennit.composites.Composite)):
                raise TypeError(f"expected a zennit composite, its class or name; got {cls!r}")
            self.composite_class, self.composite_instance = cls, None
        if not (isinstance(canonizers, list) or canonizers in ("auto", None)):
            raise ValueError("canonizers must be 'auto', None or a list of zennit canonizers")
        self.canonizers = canonizers
        self.bounds = _check_bounds(bounds)
        self.composite_options = composite_options

    input_bounds = renamed_attribute("input_bounds", "bounds")

    def cost(self, x_shape, target=None) -> Cost:
        """Exact: one forward and one rule-modified (LRP) backward per sample through a copy
        of the model, + 1 forward for a ``None`` target over several chunks."""
        n = check_shape(x_shape)[0]
        resolve = predicted(target) and self.batch_size is not None and self.batch_size < n
        return Cost(1 + int(resolve), 1)

    def _composite(self, model: nn.Module, x: torch.Tensor) -> Any:
        if self.composite_instance is not None:
            return self.composite_instance
        options = dict(self.composite_options)
        params = inspect.signature(self.composite_class.__init__).parameters
        if "low" in params and "low" not in options:
            options["low"], options["high"] = _box(model, self.bounds, x)
        canonizers = _canonizers(model) if self.canonizers == "auto" else self.canonizers
        if canonizers and "canonizers" in params:
            options["canonizers"] = canonizers
        return self.composite_class(**options)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        _refuse_attention(self.model)
        if self.canonizers == "auto":
            _refuse_misplaced_batchnorm(self.model)
        model = copy.deepcopy(self.model)  # hooks and canonizers never touch the user's model
        for module in model.modules():
            if hasattr(module, "inplace"):
                module.inplace = False
            if isinstance(module, Normalize):
                module.forward = _pass_normalize.__get__(module)
        for p in model.parameters():
            p.requires_grad_(False)
        composite = self._composite(model, x)
        scores: list[torch.Tensor] = []

        def relevance_of(xs: torch.Tensor, t: Target, rows: torch.Tensor | None) -> torch.Tensor:
            # Zennit's rules return relevance (not a gradient) at the input; the backward
            # seeded with ones at the target logit starts LRP from R_out = 1: scale by f_y(x).
            grad, output = input_gradient(hooked, xs, t, rows)
            scores.append(t.scores(output, rows))
            return grad * scores[-1].view(-1, *([1] * (xs.dim() - 1)))

        with composite.context(model) as hooked:
            self.metadata["unmerged_batchnorm"] = _unmerged_batchnorm(hooked)
            relevance = self.map_samples(x, target, relevance_of)
        self.metadata["relevance_ratio"] = (
            relevance.flatten(1).sum(1) / torch.cat(scores)
        ).tolist()
        vanished = [i for i, (r, f) in enumerate(zip(relevance.flatten(1).abs().amax(1),
                                                     torch.cat(scores))) if r == 0 and f != 0]
        if vanished:  # never a plausible-looking empty map
            raise UnsupportedLayerError(
                "", self.model, f"Zennit's {self.composite_class.__name__} returned all-zero "
                f"relevance for samples {vanished} although their scores are non-zero (a "
                "module of this model has no LRP rule that passes relevance)")
        return relevance

    def __repr__(self) -> str:
        name = self.composite_class.__name__
        return f"ZennitExplainer({name}, model={type(self.model).__name__})"


_HEAD_COUNTS = ("num_heads", "n_heads", "num_attention_heads")


def _refuse_misplaced_batchnorm(model: nn.Module) -> None:
    """Zennit's ``SequentialMergeBatchNorm`` merges each batch norm into the conv/linear
    registered just before it; a batch norm after a concatenation (DenseNet's ``norm1``)
    follows a conv of other width, and merging crashes inside Zennit: refused by name."""
    last: tuple[str, nn.Module] | None = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            last = (name, module)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and last is not None:
            width = getattr(last[1], "out_channels", getattr(last[1], "out_features", None))
            if width != module.num_features:
                raise UnsupportedLayerError(
                    name, module, "operation 'batch norm after a concatenation' "
                    f"({module.num_features} channels after {last[0]!r} with {width}): Zennit's "
                    "SequentialMergeBatchNorm cannot merge it (pass canonizers=[] to skip "
                    "merging; relevance then is not conserved there)")
            last = None


def _refuse_attention(model: nn.Module) -> None:
    """Zennit's composites have no rule for attention (its softmax and the products of
    activations: Zennit issue #184); on vision transformers they crash inside autograd or
    return NaN. Refused by name: ``nn.MultiheadAttention`` or a module declaring a head
    count (``num_heads``, ``n_heads``, ``num_attention_heads``, as timm's, torchvision
    Swin/MaxViT's and Hugging Face's attention modules do)."""
    found = [(name, module) for name, module in model.named_modules()
             if isinstance(module, nn.MultiheadAttention)
             or any(isinstance(getattr(module, a, None), int) for a in _HEAD_COUNTS)]
    inner = [(n, m) for n, m in found if not any(o is not m and any(o is d for d in m.modules())
                                                 for _, o in found)]
    for name, module in inner[:1]:
        raise UnsupportedLayerError(
                name, module, "operation 'attention' (Zennit's LRP composites have no rule "
                "for attention, Zennit issue #184; SRD freezes the attention weights)")


def from_zennit(
    composite: str | type | Any, /, model: nn.Module, **options: Any
) -> ZennitExplainer:
    """An LRP explainer from a Zennit composite (instance, class, or name such as
    ``"EpsilonPlusFlat"``, ``"EpsilonGammaBox"``, ``"epsilon_plus_flat"``)."""
    return ZennitExplainer(composite, model, **options)


METHODS.register_prefix("zennit:", from_zennit)
