"""Grad-CAM (Selvaraju et al. 2017).

L = ReLU(Σ_k α_k A^k),  α_k = (1/Z) Σ_ij ∂f_y/∂A^k_ij, at a layer's output A, upsampled to
the input size: N×1×H×W. Default layer: the last ``nn.Conv2d`` — except on token models
(vision transformers), whose last ``nn.Conv2d`` is the patch embedding: there A is the last
transformer block's token output with the class token dropped and the tokens laid out on the
patch grid (the common ViT adaptation of Grad-CAM, e.g. pytorch-grad-cam's
``reshape_transform``; the paper defines Grad-CAM for CNN feature maps only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..core.batching import DEFAULT_BATCH_SIZE
from ..core.cost import Cost, check_shape
from ..core.explainer import Explainer
from ..core.layers import (
    Capture,
    capture_output,
    find_module,
    last_module_of_type,
    repeated_blocks,
)
from ..core.registry import register
from ..core.targets import Target

_MODES = ("bilinear", "nearest", "bicubic", "area")


def _contains(outer: nn.Module, inner: nn.Module) -> bool:
    return any(m is inner for m in outer.modules())


def token_grid(activation: torch.Tensor, height: int, width: int,
               channels_last: bool = False, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """A token output as an N×D×h×w map: N×T×D tokens or, with ``channels_last``, an
    N×h×w×D map (Swin). With ``grid`` = (h, w) (the patch embedding's output size) the
    T − h·w leading tokens (class, distillation, register tokens) are dropped; without it
    the leading class token is dropped when T − 1, not T, fills the patch grid of an
    ``height``×``width`` input."""
    if activation.dim() == 4 and channels_last:
        return activation.permute(0, 3, 1, 2)
    n, t, d = activation.shape
    if grid is not None:
        h, w = grid
        if 0 <= t - h * w <= t // 2:
            return activation[:, t - h * w:].reshape(n, h, w, d).permute(0, 3, 1, 2)
        raise ValueError(f"cannot lay {t} tokens out on the {h}×{w} patch grid; pass "
                         "reshape=... (tokens → N×C×h×w) or layer=... with an N×C×h×w output")
    for prefix in (0, 1):
        cells = t - prefix
        h = max(1, round(math.sqrt(cells * height / width)))
        if cells > 0 and cells % h == 0:
            w = cells // h
            if abs(h / w - height / width) <= 0.25 * height / width:
                return activation[:, prefix:].reshape(n, h, w, d).permute(0, 3, 1, 2)
    raise ValueError(f"cannot lay {t} tokens out on a patch grid of a {height}×{width} "
                     "input; pass reshape=... (tokens → N×C×h×w) or layer=... with an "
                     "N×C×h×w output")


@register("gradcam")
class GradCAM(Explainer):
    """Grad-CAM at ``layer`` (module name or module; default: the last ``nn.Conv2d``, on a
    token model the last transformer block — see the module doc).

    ``relu=False`` keeps negative evidence (Captum's ``relu_attributions=False``);
    ``interpolate`` is the upsampling mode (``bilinear`` default, ``nearest`` as Captum).
    A layer with an N×T×D token output is laid out on the patch grid (:func:`token_grid`):
    the grid is the patch embedding's (the last ``nn.Conv2d`` before the layer) output size
    and the leading tokens beyond it (class, distillation, register tokens) are dropped.
    ``reshape``: a callable ``activation -> N×C×h×w`` applied to the layer's output and to
    its gradient instead (pytorch-grad-cam's ``reshape_transform``), for other layouts.
    ``metadata["layer"]`` names the layer used.
    """

    spatial = True

    def __init__(
        self,
        model: nn.Module,
        *,
        layer: str | nn.Module | None = None,
        relu: bool = True,
        interpolate: str = "bilinear",
        reshape: Callable[[torch.Tensor], torch.Tensor] | None = None,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        if reshape is not None and not callable(reshape):
            raise TypeError(f"reshape must be a callable activation -> N×C×h×w, got "
                            f"{type(reshape).__name__}")
        self.reshape = reshape
        self._candidate: str | None = None  # a token block to check on the first call
        convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        self._patch_conv = convs[-1] if convs else None  # on a token model: the embedding
        self._before_last: str | None = None
        self.channels_last = False
        if layer is None:
            conv = self._patch_conv
            blocks = repeated_blocks(model)
            order = {m: i for i, (_, m) in enumerate(model.named_modules())}
            if blocks and (conv is None or (not _contains(blocks[-1][1], conv[1])
                                            and order[blocks[-1][1]] > order[conv[1]])):
                self._candidate = blocks[-1][0]  # blocks after the last conv: a token model?
                self._before_last = blocks[-2][0] if len(blocks) > 1 else None
            if conv is None and self._candidate is None:
                last_module_of_type(model, (nn.Conv2d,))  # raises the usual error
            self.layer_name = conv[0] if conv is not None else self._candidate
        else:
            self.layer_name, _ = find_module(model, layer)
        if interpolate not in _MODES:
            raise ValueError(f"interpolate must be one of {_MODES}, got {interpolate!r}")
        self.relu = relu
        self.interpolate = interpolate

    def cost(self, x_shape, target=None) -> Cost:
        """One forward + one backward (to the layer) per sample, + 1 forward for a ``None``
        target over several chunks (:meth:`map_samples`); on a token model's first call
        also one forward of the first sample to choose the layer (an upper bound then,
        exact for one sample)."""
        base = super().cost(x_shape, target)  # 1 + 1 per row, + the None-target forward
        probe = self._candidate is not None
        n = check_shape(x_shape)[0]
        return Cost(base.forward + int(probe), base.backward, exact=not probe or n == 1)

    def _choose_layer(self, x: torch.Tensor) -> None:
        """On the first call: take the candidate block when its output is tokens (N×T×D, or
        N×h×w×D normalised over D by a LayerNorm inside the block), else keep the conv.
        With a class token the model reads only that token of the last block, so the
        patch tokens' gradients there are zero: the block before it is taken (its output is
        the last block's input, pytorch-grad-cam's ``blocks[-1].norm1`` choice)."""
        name = self._candidate
        _, block = find_module(self.model, name)
        with capture_output(block, name) as record, self._grid_capture(name) as patches, \
                torch.no_grad():
            self.model(x[:1])
        out = record.output
        patch_grid = self._read_grid(patches, out)
        norms = {m.normalized_shape for m in block.modules() if isinstance(m, nn.LayerNorm)}
        if out.dim() == 3 and self.reshape is not None:
            self.layer_name = name  # the user's layout: no class-token rule
        elif out.dim() == 3:
            h, w = x.shape[2:]
            grid = token_grid(out, h, w, grid=patch_grid)  # may raise: chosen again next call
            class_token = grid.shape[2] * grid.shape[3] != out.shape[1]
            self.layer_name = self._before_last if class_token and self._before_last else name
        elif out.dim() == 4 and (out.shape[-1],) in norms and out.shape[1] != out.shape[-1]:
            self.layer_name, self.channels_last = name, True
        self._candidate = None  # chosen: only after the probe succeeded

    @contextmanager
    def _grid_capture(self, layer_name: str) -> Iterator[Capture | None]:
        """Record the patch embedding's output (its size is the patch grid of this input)."""
        name = self._patch_conv[0] if self._patch_conv is not None else None
        if name is None or name == layer_name or self.reshape is not None:
            yield None
            return
        _, conv = find_module(self.model, name)  # by name: works on model copies
        with capture_output(conv, name) as record:
            yield record

    @staticmethod
    def _read_grid(patches: Capture | None, tokens: torch.Tensor) -> tuple[int, int] | None:
        """The patch grid (h, w): the patch embedding's output size, when it ran once and
        gives at most as many cells as there are tokens (else ``None``)."""
        if patches is None or len(patches.outputs) != 1 or tokens.dim() != 3:
            return None
        out = patches.outputs[0]
        if out.dim() == 4 and 0 < out.shape[2] * out.shape[3] <= tokens.shape[1]:
            return int(out.shape[2]), int(out.shape[3])
        return None

    def layer_map(self, x: torch.Tensor, target: Target, rows: torch.Tensor | None = None):
        """Σ_k α_k A^k at the layer's resolution (before ReLU and upsampling)."""
        _, layer = find_module(self.model, self.layer_name)  # by name: works on model copies
        with capture_output(layer, self.layer_name) as record, \
                self._grid_capture(self.layer_name) as patches, \
                torch.enable_grad():
            output = self.model(x.detach().requires_grad_(True).clone())
            scores = target.scores(output, rows)
            activation = record.output
            patch_grid = self._read_grid(patches, activation)
            tokens = activation.dim() == 3 or self.channels_last
            if self.reshape is None and activation.dim() != 4 and not tokens:
                raise ValueError(
                    f"Grad-CAM needs a layer with N×C×h×w output; {self.layer_name!r} gives "
                    f"{tuple(activation.shape)}"
                )
            (grad,) = torch.autograd.grad(scores.sum(), activation)
        activation = activation.detach()
        if self.reshape is not None:
            activation, grad = self.reshape(activation), self.reshape(grad)
            if activation.dim() != 4 or grad.shape != activation.shape:
                raise ValueError(f"reshape must return N×C×h×w maps; it gave "
                                 f"{tuple(activation.shape)} for {self.layer_name!r}")
        elif tokens:
            h, w = x.shape[2:]
            activation = token_grid(activation, h, w, self.channels_last, patch_grid)
            grad = token_grid(grad, h, w, self.channels_last, patch_grid)
        alpha = grad.mean(dim=(2, 3), keepdim=True)
        return (alpha * activation).sum(dim=1, keepdim=True)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        if self._candidate is not None:
            self._choose_layer(x)
        self.metadata["layer"] = self.layer_name
        cam = self.map_samples(x, target, self.layer_map)
        if self.relu:
            cam = cam.clamp_min(0)
        kwargs = {} if self.interpolate in ("nearest", "area") else {"align_corners": False}
        return F.interpolate(cam, size=x.shape[2:], mode=self.interpolate, **kwargs)
