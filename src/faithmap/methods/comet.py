"""COMET's mask as a registered explainer (``"comet"``), for comparison with post-hoc maps.

``get_explainer(model, "comet", checkpoint="cluttered_comet")``: the map is the trained
selector's mask m = σ(S(x)), N×1×H×W in (0, 1). ``model`` is the black-box classifier the
evaluation scores maps against (normally the detector COMET was trained with); the mask
does not depend on it nor on the target — COMET's selector is class-agnostic and explains
its own predictor f_P. Inputs whose channel count differs from the checkpoint's are
averaged to grey (1-channel checkpoint) or repeated (grey input), noted in
``metadata["channel_conversion"]``. ``metadata["comet_prediction"]`` holds f_P's predicted
classes and ``metadata["target_agrees"]`` whether they equal the requested targets.

The mask explains COMET's own predictor, so it stands for ``model`` only when ``model`` is
the classifier the checkpoint was trained with: ``model`` must be that detector (its weight
fingerprint is in the checkpoint's config, :func:`faithmap.comet.training.fingerprint`),
else :class:`ModelMismatchError`. ``check_model=False`` skips the check (e.g. to look at a
checkpoint's masks on other data).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..comet.model import ComprehensiveAttributionModel
from ..comet.objective import select
from ..comet.training import fingerprint
from ..core.batching import DEFAULT_BATCH_SIZE, chunks
from ..core.cost import Cost
from ..core.errors import InvalidInputError
from ..core.explainer import Explainer
from ..core.registry import register
from ..core.targets import Target


class ModelMismatchError(InvalidInputError):
    """The model is not the classifier a COMET checkpoint was trained with."""


@register("comet")
class COMETExplainer(Explainer):
    """The mask of a trained COMET checkpoint (path, shipped name, or model object)."""

    spatial = True

    def __init__(self, model: nn.Module, *,
                 checkpoint: str | Path | ComprehensiveAttributionModel = "cluttered_comet",
                 batch_size: int | None = DEFAULT_BATCH_SIZE, check_model: bool = True) -> None:
        super().__init__(model, batch_size=batch_size)
        if isinstance(checkpoint, ComprehensiveAttributionModel):
            self.comet = checkpoint
        else:
            self.comet = ComprehensiveAttributionModel.load(checkpoint)
        self.comet.eval()
        trained_with = self.comet.config.get("detector")
        weights = fingerprint(model) if check_model else trained_with
        if weights != trained_with:
            name = checkpoint if isinstance(checkpoint, str | Path) else "the COMET model"
            raise ModelMismatchError(
                f"comet explains only the classifier {name} was trained with (detector "
                f"{trained_with}); this {type(model).__name__} (weights {weights}) "
                "is not it: train a COMET model for it (faithmap train-comet) or pass "
                "check_model=False to look at the checkpoint's masks anyway")

    @classmethod
    def applies_to(cls, model: nn.Module, checkpoint: str | Path = "cluttered_comet") -> bool:
        """Whether ``model`` is the classifier ``checkpoint`` was trained with (the default
        method list of ``fm.evaluate`` leaves ``comet`` out for any other model)."""
        config = ComprehensiveAttributionModel.load(checkpoint).config
        return fingerprint(model) == config.get("detector")

    def cost(self, x_shape, target=None) -> Cost:
        """Exact, forward only: one gradient-free forward of the model (the target check) and
        one of COMET's selector and predictor (``Cost.other``); no backward pass."""
        return Cost(1, 0, other={"COMET selector+predictor forward": 1})

    def _channels(self, x: torch.Tensor) -> torch.Tensor:
        want, have = self.comet.config["in_channels"], x.shape[1]
        if have == want:
            return x
        if want == 1:
            self.metadata["channel_conversion"] = f"{have} channels averaged to grey"
            return x.mean(1, keepdim=True)
        if have == 1:
            self.metadata["channel_conversion"] = f"grey repeated to {want} channels"
            return x.expand(-1, want, -1, -1)
        raise InvalidInputError(f"the COMET checkpoint takes {want}-channel images, got {have}")

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        with torch.no_grad():  # check the target against the black box (raises if invalid)
            out = self.model(x)
        target.resolve(out).scores(out)
        comet = self.comet.to(x.device)
        xc = self._channels(x).float()
        masks, preds = [], []
        with torch.no_grad():
            for rows in chunks(len(x), self.batch_size):
                xr = xc[rows.to(xc.device)]
                m = comet.explain(xr)
                masks.append(m)
                preds.append(comet.predictor(select(xr, m, comet.fill)).argmax(1))
        pred = torch.cat(preds)
        self.metadata["comet_prediction"] = pred.tolist()
        if target.indices is not None:
            self.metadata["target_agrees"] = (pred.cpu() == target.indices.cpu()).tolist()
        return torch.cat(masks)
