"""SRD — Sharing Ratio Decomposition (Han, Kim, Kwak, ICLR 2024, arXiv 2402.03348).

Relevance lives on pointwise feature vectors (PFVs, the C-dim vector at one position of a
post-ReLU map). Between ReLUs the pre-activation z_p is a sum of contributions c_{q→p}
(one kernel tap each, plus a bias share ∝ ||W_k v_q||); with sharing ratios
μ_{q→p} = <c_{q→p}, z_p>/||z_p||² the recursion R^l_q = Σ_p μ_{q→p} R^{l+1}_p conserves
relevance. It runs as one batched backward pass (see :mod:`.rules`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...core.batching import DEFAULT_BATCH_SIZE, chunks
from ...core.cost import Cost, predicted
from ...core.explainer import Explainer
from ...core.modules import Normalize
from ...core.prelude import guarded_call, prepare
from ...core.registry import register
from ...core.safety import model_guard
from ...core.targets import Target, TargetLike
from .errors import CutError, LayerError
from .graph import Replay, is_cut, replay, trace
from .rules import Recorder, signal

_STARTS = ("auto", "head", "cam")


@register("srd")
class SRD(Explainer):
    """Sharing Ratio Decomposition: a signed N×1×H×W map (N×C×H×W with ``per_channel``).

    ``start="head"`` (the ``"auto"`` choice) decomposes the head with the same rules from
    the target score (GAP + linear models: R_p = (w_y·v_p + b_y)/HW at the pooled layer, so
    the pixel map sums to the logit); ``start="cam"`` starts at the last spatial ReLU with
    the Grad-CAM map Σ_c α_c v_c, α_c = mean_p ∂f_y/∂v_{c,p} (the reference code's VGG
    start), signed by default, clamped at 0 with ``cam_clamp=True`` as the reference code
    (torchray's ``grad_cam``) does. ``contrastive=True`` subtracts the per-sample mean of
    the starting map (at the last spatial ReLU). Both restart the recursion at that ReLU,
    which must be a cut of the graph (else :class:`~.errors.CutError`).

    ``eps`` is scale-relative: the denominator is ||z_p||² + eps · mean_p ||z_p||² (per
    sample and layer), so tiny activations are not swallowed.
    """

    spatial = True

    def __init__(self, model: nn.Module, *, start: str = "auto", contrastive: bool = False,
                 per_channel: bool = False, eps: float = 1e-9, cam_clamp: bool = False,
                 batch_size: int | None = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(model, batch_size=batch_size)
        if start not in _STARTS:
            raise ValueError(f"start must be one of {_STARTS}, got {start!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.start = "head" if start == "auto" else start
        self.cam_clamp = bool(cam_clamp)
        self.contrastive = bool(contrastive)
        self.per_channel = bool(per_channel)
        self.spatial = not per_channel  # type: ignore[misc] - per instance
        self.eps = float(eps)
        self._maps: dict[str, torch.Tensor] = {}

    def cost(self, x_shape, target=None) -> Cost:
        """Exact. Through the model itself only the forward that finds a ``None`` target;
        SRD's own passes replay a traced copy of the model (``Cost.other``): one replay
        forward (two with ``start="cam"``) and one relevance backward of the sharing-ratio
        rules (two when the recursion restarts at a ReLU: ``start="cam"`` or
        ``contrastive``) — backward-like passes, not backward passes of the model."""
        restart = self.start == "cam" or self.contrastive
        other = {"replay forward": 1 + int(self.start == "cam"),
                 "relevance backward": 1 + int(restart)}
        return Cost(int(predicted(target)), 0, other=other)

    def _replay(self, x: torch.Tensor, rec: Recorder | None) -> Replay:
        return replay(trace(self.model), x, rec, self.eps)

    def _start_map(self, x: torch.Tensor, target: Target, rows: torch.Tensor, rec: Recorder,
                   rp: Replay, name: str, z: torch.Tensor) -> torch.Tensor:
        """The starting relevance map (N×1×h×w) at boundary ``name`` (pre-activation z)."""
        if self.start == "cam":
            plain = self._replay(x, None)
            v = dict((n, b) for n, _, b in plain.boundaries)[name]
            score = target.scores(plain.output, rows)
            (g,) = torch.autograd.grad(score.sum(), v)
            cam = (g.mean(dim=(2, 3), keepdim=True) * v).sum(dim=1, keepdim=True).detach()
            return cam.clamp_min(0) if self.cam_clamp else cam
        score = target.scores(rp.output, rows)
        torch.autograd.grad(score.sum(), z, retain_graph=True)
        return rec.maps[name]

    def _cut(self, rp: Replay) -> tuple[str, torch.Tensor]:
        """The last spatial ReLU (name, pre-activation), checked to be a cut of the graph."""
        why = "start='cam'" if self.start == "cam" else "contrastive=True"
        spatial = [(n, z) for n, z, v in rp.spatial()]
        if not spatial:
            raise CutError(f"{why} restarts the recursion at the last spatial ReLU (gate), "
                           "but the model has no ReLU or other gate on a channel-first "
                           "N×C×H×W map (a token or channel-last model: use start='head' "
                           "without contrastive)")
        name, z = spatial[-1]
        if rp.graph is not None and not is_cut(rp.graph, name, rp.coef):
            cuts = [n for n, _ in spatial if is_cut(rp.graph, n, rp.coef)]
            raise CutError(
                f"{why} restarts the recursion at the last spatial ReLU {name!r}, but it is "
                "not a cut of the graph (a path from the input to the output bypasses it, "
                "e.g. a residual add after it); the map would miss that path. Use "
                f"start='head' without contrastive (last spatial ReLUs that are cuts: "
                f"{cuts[-3:] or 'none'})")
        return name, z

    def _explain(self, x: torch.Tensor, target: Target, rows: torch.Tensor) -> tuple:
        rec = Recorder(self.eps)
        with torch.enable_grad():
            rp = self._replay(x, rec)
            if self.start == "head" and not self.contrastive:
                # one pass from the score to the pixels (no cut at a ReLU needed)
                score = target.scores(rp.output, rows)
                pfv = _pixels(rp, score.sum(), None)
            else:
                name, z = self._cut(rp)
                r0 = self._start_map(x, target, rows, rec, rp, name, z)
                if self.contrastive:
                    r0 = r0 - r0.mean(dim=(1, 2, 3), keepdim=True)
                rec.maps[name] = r0
                pfv = _pixels(rp, z, signal(r0, z, self.eps))
        return (pfv if self.per_channel else pfv.sum(dim=1, keepdim=True)), rec.maps

    def attribute(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        target.resolve_with(self.model, x)
        self.metadata["start"] = self.start
        outs: list[torch.Tensor] = []
        maps: dict[str, list[torch.Tensor]] = {}
        for rows in chunks(x.shape[0], self.batch_size):
            out, rec_maps = self._explain(x[rows.to(x.device)], target, rows)
            outs.append(out)
            for k, m in rec_maps.items():
                maps.setdefault(k, []).append(m)
        result = torch.cat(outs)
        self._maps = {k: torch.cat(v).squeeze(1) for k, v in maps.items()}
        self._maps["input"] = result.sum(dim=1)
        return result

    def layer_maps(self, x: torch.Tensor, target: TargetLike = None) -> dict[str, torch.Tensor]:
        """Relevance maps (N×h×w; N for fully connected layers) at every reached ReLU
        boundary (keyed by the fx node name) and at the input (``"input"``)."""
        self(x, target)
        return dict(self._maps)

    def erf(self, x: torch.Tensor, layer: str, position: tuple[int, int]) -> torch.Tensor:
        """Effective receptive field of one PFV: a one-hot relevance at ``position`` of the
        ReLU boundary ``layer`` (a key of :meth:`layer_maps`) propagated to the pixels.

        ``layer`` must be a spatial (N×C×h×w) ReLU and ``position`` inside its h×w map, else
        :class:`~.errors.LayerError`."""
        with guarded_call(self.model, x) as (inputs, _), torch.enable_grad():
            rp = self._replay(inputs, Recorder(self.eps))
            found = {n: z for n, z, _ in rp.boundaries}
            if layer not in found:
                raise KeyError(f"unknown layer {layer!r}; boundaries: {list(found)}")
            z = found[layer]
            spatial = [n for n, _, _ in rp.spatial()]
            if layer not in spatial:
                kind = "fully connected" if z.dim() != 4 else "not channel-first"
                raise LayerError(f"erf needs a spatial ReLU (N×C×h×w); {layer!r} is {kind} "
                                 f"(shape {tuple(z.shape)}); spatial ReLUs: {spatial}")
            h, w = z.shape[2:]
            i, j = (int(p) for p in position)
            if not (0 <= i < h and 0 <= j < w):
                raise LayerError(f"position {tuple(position)} is outside the {h}×{w} map of "
                                 f"{layer!r}")
            r0 = torch.zeros_like(z[:, :1])
            r0[:, :, i, j] = 1.0
            pfv = _pixels(rp, z, signal(r0, z, self.eps))
        return pfv.sum(dim=1, keepdim=True).to(x.dtype)


def _pixels(rp: Replay, outputs: torch.Tensor, grad_outputs: torch.Tensor | None
            ) -> torch.Tensor:
    """The per-channel pixel map (N×C×H×W): input PFVs times the signal, plus the relevance
    carried onto zero pixels by the input's ghost (split evenly over the channels)."""
    leaves = [rp.inputs] if rp.ghost is None else [rp.inputs, rp.ghost]
    grads = torch.autograd.grad(outputs, leaves, grad_outputs, allow_unused=True)
    g = grads[0] if grads[0] is not None else torch.zeros_like(rp.inputs)
    pfv = rp.inputs * g
    if len(grads) > 1 and grads[1] is not None:
        pfv = pfv + grads[1] / rp.inputs.shape[1]
    return pfv.detach()


def apop_predict(model: nn.Module, x: torch.Tensor, pattern_from: torch.Tensor | None = None,
                 *, bias_scale: float = 1.0) -> torch.Tensor:
    """Logits of ``model`` at ``x`` with every ReLU's activation pattern and every max-pool's
    routing frozen from ``pattern_from`` (same shape; default ``x`` itself) and every bias
    (batch-norm shifts folded in) multiplied by ``bias_scale`` — the paper's APOP
    observation: the prediction is largely determined by the pattern, not by the input
    values or the biases. The pattern is recorded with the model's own biases."""
    inputs, _ = prepare(model, x, None, "x")
    source = inputs if pattern_from is None else prepare(model, pattern_from, None,
                                                         "pattern_from")[0]
    if inputs.shape != source.shape:
        raise ValueError(f"x {tuple(inputs.shape)} and pattern_from {tuple(source.shape)} differ")
    if isinstance(bias_scale, bool) or not isinstance(bias_scale, int | float) \
            or not math.isfinite(bias_scale):
        raise ValueError(f"bias_scale must be a finite number, got {bias_scale!r}")
    pattern: dict[str, torch.Tensor] = {}
    with model_guard(model), torch.no_grad():
        gm = trace(model)
        replay(gm, source, None, 1.0, pattern)
        out = replay(gm, inputs, None, 1.0, pattern, freeze=True, bias_scale=bias_scale).output
    return out.detach()


def zero_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input (shaped like ``x``) that the model's first layer sees as all zeros — APOP's
    "zeros as input" in the model's own input space. A model whose input goes straight into
    a :class:`~faithmap.core.modules.Normalize` (the zoo's and ``fm.zoo.torchvision``'s
    models) gets that module's per-channel ``mean`` (``(mean − mean)/std = 0``); any other
    model gets raw zeros."""
    inputs, _ = prepare(model, x, None, "x")
    for node in trace(model).graph.nodes:
        if node.op == "call_module" and node.args and getattr(node.args[0], "op", "") \
                == "placeholder":
            m = model.get_submodule(str(node.target))
            if isinstance(m, Normalize):
                return m.mean.to(inputs).expand_as(inputs).clone()
    return torch.zeros_like(inputs)
