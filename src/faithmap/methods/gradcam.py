"""Grad-CAM (Selvaraju et al. 2017).

L = ReLU(Σ_k α_k A^k),  α_k = (1/Z) Σ_ij ∂f_y/∂A^k_ij, at a convolutional layer's
output A (the last ``nn.Conv2d`` by default), upsampled to the input size: N×1×H×W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.batching import DEFAULT_BATCH_SIZE
from ..core.explainer import Explainer
from ..core.layers import capture_output, find_module, last_module_of_type
from ..core.registry import register
from ..core.targets import Target

_MODES = ("bilinear", "nearest", "bicubic", "area")


@register("gradcam")
class GradCAM(Explainer):
    """Grad-CAM at ``layer`` (module name or module; default: the last ``nn.Conv2d``).

    ``relu=False`` keeps negative evidence (Captum's ``relu_attributions=False``);
    ``interpolate`` is the upsampling mode (``bilinear`` default, ``nearest`` as Captum).
    """

    spatial = True

    def __init__(
        self,
        model: nn.Module,
        *,
        layer: str | nn.Module | None = None,
        relu: bool = True,
        interpolate: str = "bilinear",
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        if layer is None:
            self.layer_name, _ = last_module_of_type(model, (nn.Conv2d,))
        else:
            self.layer_name, _ = find_module(model, layer)
        if interpolate not in _MODES:
            raise ValueError(f"interpolate must be one of {_MODES}, got {interpolate!r}")
        self.relu = relu
        self.interpolate = interpolate

    def layer_map(self, x: torch.Tensor, target: Target, rows: torch.Tensor | None = None):
        """Σ_k α_k A^k at the layer's resolution (before ReLU and upsampling)."""
        _, layer = find_module(self.model, self.layer_name)  # by name: works on model copies
        with capture_output(layer, self.layer_name) as record, torch.enable_grad():
            output = self.model(x.detach().requires_grad_(True).clone())
            scores = target.scores(output, rows)
            activation = record.output
            if activation.dim() != 4:
                raise ValueError(
                    f"Grad-CAM needs a layer with N×C×h×w output; {self.layer_name!r} gives "
                    f"{tuple(activation.shape)}"
                )
            (grad,) = torch.autograd.grad(scores.sum(), activation)
        alpha = grad.mean(dim=(2, 3), keepdim=True)
        return (alpha * activation.detach()).sum(dim=1, keepdim=True)

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        cam = self.map_samples(x, target, self.layer_map)
        if self.relu:
            cam = cam.clamp_min(0)
        kwargs = {} if self.interpolate in ("nearest", "area") else {"align_corners": False}
        return F.interpolate(cam, size=x.shape[2:], mode=self.interpolate, **kwargs)
