"""SRD segment graph: trace a model with torch.fx and replay it with the SRD rules.

Standard ``torch.nn`` modules (and attention modules) are leaves; user modules (residual
blocks, ...) are traced through. The replay never modifies the model: BatchNorm is folded
into new tensors, gates (ReLUs and every elementwise activation, :mod:`.gates`) become
:class:`~.rules.Boundary` nodes, coefficient branches (squeeze-excitation scales, softmax
weights) run as a plain detached forward, and every bias-like constant gets a bias rule
(:mod:`.bias`, :mod:`.norms`, :mod:`.attention`). Each value is a *signal* (carries
relevance), *frozen* (input-dependent but detached: a coefficient) or a *constant*.
Anything the rules do not cover raises :class:`UnsupportedLayerError` with the path and
type of the module it belongs to and the op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from ...core.errors import UnsupportedLayerError
from ...core.modules import Normalize
from . import norms
from .attention import frozen_attention, is_attention
from .bias import add_bias
from .errors import unsupported
from .functions import ADD_FN, FunctionRules
from .gates import coefficient_nodes, gate_fn
from .layout import channel_dim, default_cdim
from .rules import AffineConv, Boundary, Recorder, ghost_like

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
             nn.Identity)
_LINEAR_MODULES = (nn.Flatten, nn.Unflatten, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                   nn.AdaptiveMaxPool2d, nn.ZeroPad2d, nn.ChannelShuffle, nn.AvgPool1d,
                   nn.AdaptiveAvgPool1d)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
          *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
_GHOST_OPS = {"permute", "transpose", "swapaxes", "movedim"}


def _is_normalize(m: nn.Module) -> bool:
    return isinstance(m, Normalize)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, _CONTAINERS):
            return False
        return type(m).__module__.startswith("torch.nn") or _is_normalize(m) or \
            is_attention(m)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolic trace with standard modules as leaves (raises UnsupportedLayerError)."""
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure is "unsupported"
        raise UnsupportedLayerError("", model, f"torch.fx cannot trace the model: {exc}") from exc
    gm = fx.GraphModule(model, graph)
    gm.meta["srd_root"] = model  # error messages name the user's modules
    return gm


@dataclass
class Replay:
    """The result of one SRD forward: input PFVs, output, the boundaries in order, the
    input's ghost (relevance carried onto zero pixels; ``None`` without a recorder) and
    the traced graph."""

    inputs: torch.Tensor
    output: torch.Tensor
    boundaries: list[tuple[str, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    ghost: torch.Tensor | None = None
    graph: fx.GraphModule | None = None
    cdims: dict[str, int] = field(default_factory=dict)  # gate name -> channel dim
    coef: set[fx.Node] = field(default_factory=set)  # coefficient-only nodes

    def spatial(self) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """Gates on channel-first N×C×H×W maps (the ones ``cam``/``erf`` can seed)."""
        return [(n, z, v) for n, z, v in self.boundaries
                if v.dim() == 4 and self.cdims.get(n, 1) == 1]


def is_cut(gm: fx.GraphModule, name: str, skip: set[fx.Node] | None = None) -> bool:
    """Whether every path from the input to the output passes through node ``name``
    (paths through coefficient-only nodes ``skip`` carry no relevance)."""
    seen: set[fx.Node] = set(skip or ())
    todo = [n for n in gm.graph.nodes if n.op == "placeholder"][:1]  # the image input
    while todo:
        node = todo.pop()
        if node in seen or node.name == name:
            continue
        if node.op == "output":
            return False
        seen.add(node)
        todo.extend(node.users)
    return True


def _fold(weight: torch.Tensor, bias: torch.Tensor, bn: nn.Module) -> tuple:
    """BN(W x + b) = W' x + b' with eval statistics (new tensors)."""
    scale = bn.weight.detach() if bn.weight is not None else torch.ones_like(bn.running_var)
    shift = bn.bias.detach() if bn.bias is not None else torch.zeros_like(bn.running_var)
    a = scale / torch.sqrt(bn.running_var + bn.eps)
    w = weight * a.view(-1, *([1] * (weight.dim() - 1)))
    return w, (bias - bn.running_mean) * a + shift


class _Runner(FunctionRules):
    def __init__(self, gm: fx.GraphModule, rec: Recorder | None, eps: float) -> None:
        self.gm, self.rec, self.eps = gm, rec, eps
        self.env: dict[fx.Node, object] = {}
        self.ghosts: dict[fx.Node, torch.Tensor | None] = {}  # carriers (with a recorder)
        self.pool_idx: dict[fx.Node, torch.Tensor] = {}
        self.folded: dict[fx.Node, torch.Tensor] = {}
        self.gap: dict[fx.Node, fx.Node] = {}  # pooled node -> 4-D source node
        self.boundaries: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        self.cdims: dict[fx.Node, int | None] = {}
        self.gate_cdims: dict[str, int] = {}
        self.signals: set[fx.Node] = set()  # values that carry relevance
        self.frozen: set[fx.Node] = set()   # input-dependent coefficients (detached)
        self.coef = coefficient_nodes(gm)
        self.same_pos: dict[fx.Node, fx.Node] = {}  # per-position op -> its signal input
        self.inputs: torch.Tensor | None = None
        self.pattern: dict[str, torch.Tensor] | None = None  # APOP: recorded or frozen
        self.freeze = False
        self.bias_scale = 1.0  # APOP's shrunk-bias variant

    # -- helpers -------------------------------------------------------------------------
    def cdim(self, node: object, t: torch.Tensor) -> int:
        c = self.cdims.get(node) if isinstance(node, fx.Node) else None
        return default_cdim(t) if c is None else c

    def native(self) -> bool:
        """A plain replay (no recorder, full biases): norms and attention run as the model's
        own ops, so gradients through them (the ``cam`` start) are the model's."""
        return self.rec is None and self.bias_scale == 1.0

    def kind(self, a: object) -> str:
        if isinstance(a, fx.Node):
            return "signal" if a in self.signals else "frozen" if a in self.frozen else "const"
        return "const"

    def ghost_for(self, node: object, x: torch.Tensor, cdim: int) -> torch.Tensor | None:
        ghost = self.ghosts.get(node) if isinstance(node, fx.Node) else None
        if ghost is None or self.rec is None:
            return None
        shape = list(x.shape)
        shape[cdim] = 1
        return ghost.reshape(shape) if ghost.numel() == math.prod(shape) else None

    def scaled(self, b: torch.Tensor) -> torch.Tensor:
        return b * self.bias_scale if self.bias_scale != 1.0 else b

    def affine(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
               stride: tuple = (1, 1), padding: tuple = (0, 0),
               source: object = None, dilation: tuple = (1, 1), groups: int = 1
               ) -> torch.Tensor:
        """conv2d with the SRD rule; ``source`` is the node whose ghost carries relevance
        onto zero PFVs of ``x`` (reshaped to x's N×1×h×w)."""
        b = self.scaled(b)
        if self.rec is None:
            return F.conv2d(x, w, b, stride, padding, dilation, groups)
        ghost = self.ghost_for(source, x, 1)
        return AffineConv.apply(x, ghost, w, b, tuple(stride), tuple(padding),
                                tuple(dilation), groups)

    def bias(self, y: torch.Tensor, x: torch.Tensor, b: torch.Tensor, cdim: int,
             source: object) -> torch.Tensor:
        """y + b with the per-position bias rule (x: the PFVs at the same positions)."""
        b = self.scaled(b)
        if self.rec is None:
            return y + b
        return add_bias(y, x, b, cdim, self.ghost_for(source, x, cdim))

    def boundary(self, node: fx.Node, z: torch.Tensor, fn=None) -> torch.Tensor:
        cdim = self.cdim(node.args[0], z)
        if self.pattern is not None:
            if self.freeze:
                return z * self.pattern[node.name]
            if fn is None:
                self.pattern[node.name] = (z > 0).to(z.dtype)
            else:
                v = fn(z.detach())
                nz = z.detach() != 0
                self.pattern[node.name] = torch.where(nz, v / torch.where(nz, z.detach(), 1),
                                                      torch.zeros_like(v))
        if self.rec is None:
            v = torch.relu(z) if fn is None else fn(z)
        else:
            v, self.ghosts[node] = Boundary.apply(z, node.name, self.rec, fn, cdim)
        self.boundaries.append((node.name, z, v))
        self.gate_cdims[node.name] = cdim
        return v

    def with_bn(self, node: fx.Node, w: torch.Tensor, b: torch.Tensor) -> tuple:
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_module":
            bn = self.gm.get_submodule(str(users[0].target))
            if isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.track_running_stats:
                return (*_fold(w, b, bn), users[0])
        return w, b, None

    # -- layers --------------------------------------------------------------------------
    def conv(self, node: fx.Node, m: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        padding = m.padding
        if isinstance(padding, str):
            total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
            if padding == "valid":
                padding = (0, 0)
            elif all(t % 2 == 0 for t in total):
                padding = tuple(t // 2 for t in total)
        if m.padding_mode != "zeros" or isinstance(padding, str):
            raise unsupported(self.gm, node, "only numeric (or symmetric 'same') zero padding")
        b = m.bias.detach() if m.bias is not None else m.weight.new_zeros(m.out_channels)
        w, b, bn = self.with_bn(node, m.weight.detach(), b)
        out = self.affine(x, w, b, m.stride, padding, node.args[0], m.dilation, m.groups)
        if bn is not None:
            self.folded[bn] = out
        return out

    def linear(self, node: fx.Node, m: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        b = m.bias.detach() if m.bias is not None else m.weight.new_zeros(m.out_features)
        src = node.args[0]
        if x.dim() > 2:  # per token / per position of a channel-last map
            return self.bias(F.linear(x, m.weight.detach()), x, b, x.dim() - 1, src)
        w, b, bn = self.with_bn(node, m.weight.detach(), b)
        flat_src = None
        if isinstance(src, fx.Node) and (src.op, src.target) in (
                ("call_function", torch.flatten), ("call_method", "flatten"),
                ("call_method", "view"), ("call_method", "reshape")) or (
                isinstance(src, fx.Node) and src.op == "call_module"
                and isinstance(self.gm.get_submodule(str(src.target)), nn.Flatten)):
            inner = self.env[src.args[0]]
            if isinstance(inner, torch.Tensor) and inner.dim() == 4 and x.dim() == 2 \
                    and self.cdims.get(src.args[0]) == 1:
                flat_src = src.args[0]
        gap = self.gap.get(flat_src) if flat_src is not None else self.gap.get(src)
        if gap is not None:  # linear ∘ GAP = GAP ∘ (1×1 conv): bias shared per position
            t = self.env[gap]
            out = self.affine(t, w[:, :, None, None], b, source=gap).mean(dim=(2, 3))
        elif flat_src is not None:  # flatten + linear = a conv with a full-size kernel
            t = self.env[flat_src]
            out = self.affine(t, w.view(w.shape[0], *t.shape[1:]), b, source=flat_src).flatten(1)
        elif x.dim() == 2:  # one PFV of D features
            out = self.affine(x[:, :, None, None], w[:, :, None, None], b, source=src).flatten(1)
        else:
            raise unsupported(self.gm, node, f"Linear on a {x.dim()}-D input")
        if bn is not None:
            self.folded[bn] = out
        return out

    def norm(self, node: fx.Node, m: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
        src = node.args[0]
        bias = None if getattr(m, "bias", None) is None else self.scaled(m.bias.detach())
        ghost = self.ghost_for(src, x, 1) if self.rec is not None else None
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if not m.track_running_stats or m.running_mean is None:
                raise unsupported(self.gm, node, "BatchNorm without running statistics")
            return norms.batch_norm(x, m.running_mean, m.running_var, m.weight,
                                    m.bias, m.eps, ghost) if self.bias_scale == 1.0 else \
                norms.batch_norm(x, m.running_mean * self.bias_scale, m.running_var, m.weight,
                                 bias, m.eps, ghost)
        if isinstance(m, nn.LayerNorm):
            ghost = self.ghost_for(src, x, x.dim() - 1)
            return norms.layer_norm(x, m.normalized_shape, m.weight, bias, m.eps, ghost)
        if isinstance(m, nn.GroupNorm):
            return norms.group_norm(x, m.num_groups, m.weight, bias, m.eps, ghost)
        if isinstance(m, getattr(nn, "RMSNorm", ())):
            return norms.rms_norm(x, m.normalized_shape, m.weight, m.eps)
        return None

    def module(self, node: fx.Node, args: tuple, kwargs: dict) -> object:
        m = self.gm.get_submodule(str(node.target))
        x = args[0]
        if node in self.folded:
            return self.folded[node]
        if isinstance(m, nn.Conv2d):
            return self.conv(node, m, x)
        if isinstance(m, nn.Linear):
            return self.linear(node, m, x)
        if isinstance(m, nn.ReLU):
            return self.boundary(node, x)
        fn = gate_fn(node, m, args, kwargs)
        if fn is not None:
            return self.boundary(node, x, fn)
        if isinstance(m, nn.MaxPool2d) and not m.return_indices:
            if self.pattern is not None and self.freeze:  # routing frozen from another input
                idx = self.pattern[node.name]
                return x.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
            out, idx = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation,
                                    m.ceil_mode, return_indices=True)
            if self.pattern is not None:
                self.pattern[node.name] = idx
            self.pool_idx[node] = idx
            return out
        if isinstance(m, _DROPOUTS):
            return x
        if isinstance(m, _LINEAR_MODULES):
            if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
                self.gap[node] = node.args[0]
            if isinstance(m, nn.ZeroPad2d) and m.value != 0:
                raise unsupported(self.gm, node, "padding with a non-zero constant")
            return m(x)
        if self.native() and (is_attention(m) or isinstance(m, _NORMS)):
            return m(*args, **kwargs)  # a plain replay: the model's own op and gradient
        out = self.norm(node, m, x)
        if out is not None:
            self.same_pos[node] = node.args[0]
            return out
        if is_attention(m):
            with frozen_attention():
                return m(*args, **kwargs)
        if _is_normalize(m) and node.args[0].op == "placeholder":
            self.inputs = ((x - m.mean) / m.std).detach().requires_grad_(True)
            self.ghosts[node] = self.ghosts.get(node.args[0])
            return self.inputs
        raise unsupported(self.gm, node, "no SRD rule for this layer")

    # -- the run -------------------------------------------------------------------------
    def run(self, x: torch.Tensor) -> Replay:
        for node in self.gm.graph.nodes:
            args = fx.node.map_arg(node.args, lambda n: self.env[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: self.env[n])
            if node.op == "placeholder":
                if self.inputs is not None and node.args:  # an optional argument (timm's
                    self.env[node] = node.args[0]          # attn_mask=None): its default
                    continue
                if self.inputs is not None:
                    raise unsupported(self.gm, node, "more than one input")
                self.inputs = x.detach().requires_grad_(True)
                self.env[node] = self.inputs
                self.signals.add(node)
                self.cdims[node] = 1
                if self.rec is not None:
                    self.ghosts[node] = ghost_like(x).requires_grad_(True)
                continue
            if node.op == "output":
                out = args[0]
                if not isinstance(out, torch.Tensor):
                    raise unsupported(self.gm, node, "the model must return one tensor")
                assert self.inputs is not None
                ghost = next((self.ghosts.get(n) for n in self.gm.graph.nodes
                              if n.op == "placeholder"), None)
                return Replay(self.inputs, out, self.boundaries, ghost, self.gm,
                              self.gate_cdims, self.coef)
            inputs = node.all_input_nodes
            sig = any(a in self.signals for a in inputs)
            frz = any(a in self.frozen for a in inputs)
            if node.op == "get_attr":
                value: object = _attr(self.gm, str(node.target))
            elif sig and node not in self.coef:
                value = self.call(node, args, kwargs)
                if _has_tensor(value):
                    self.signals.add(node)
            else:
                value = self.plain(node, args, kwargs)
                if (sig or frz) and _has_tensor(value):
                    self.frozen.add(node)
            self.env[node] = value
            try:
                self.cdims[node] = channel_dim(self.gm, node, value, self.cdims, self.env)
            except Exception:  # noqa: BLE001 - an unknown layout is a guess, not an error
                self.cdims[node] = None
            if self.rec is not None and node not in self.ghosts and node in self.signals:
                self.ghosts[node] = self.carry(node, args, kwargs)
        raise RuntimeError("graph without output")

    def plain(self, node: fx.Node, args: tuple, kwargs: dict) -> object:
        """A constant or coefficient: the model's own op, without gradient."""
        with torch.no_grad():
            if node.op == "call_module":
                return self.gm.get_submodule(str(node.target))(*args, **kwargs)
            if node.op == "call_function":
                return node.target(*args, **kwargs)
            return getattr(args[0], str(node.target))(*args[1:], **kwargs)

    def call(self, node: fx.Node, args: tuple, kwargs: dict) -> object:
        if node.op == "call_module":
            return self.module(node, args, kwargs)
        return self.function(node, args, kwargs)

    def carry(self, node: fx.Node, args: tuple, kwargs: dict) -> torch.Tensor | None:
        """The ghost of ``node`` from its inputs' ghosts: each output PFV hands its carried
        relevance back to the input PFVs it is made of, with weights summing to 1 (a pooled
        PFV to its argmax or its window, a sum or a concatenation to its parts); ``None``
        where no rule applies (relevance carried there is dropped)."""
        ghosts = self.ghosts
        first = node.args[0] if node.args else None
        if node.op == "call_module":
            m = self.gm.get_submodule(str(node.target))
            if isinstance(m, nn.Dropout | nn.Identity):
                return ghosts.get(first)
            if isinstance(m, nn.MaxPool2d):  # to channel 0's argmax (a zero pooled PFV's
                ghost = ghosts.get(first)     # window is all zero after a ReLU)
                if ghost is None or node not in self.pool_idx:
                    return None
                idx = self.pool_idx[node][:, :1]
                return ghost.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
            if isinstance(m, nn.AvgPool2d | nn.AdaptiveAvgPool2d):
                return _pooled(m, ghosts.get(first))
            return None
        name = node.target if node.op == "call_method" else None
        if node.op == "call_function" and node.target in ADD_FN or name in ("add", "add_"):
            parts = [ghosts.get(a) for a in node.args if isinstance(a, fx.Node)]
            parts = [p for p in parts if p is not None]
            return sum(parts) / len(parts) if parts else None
        if node.op == "call_function" and node.target is torch.cat:
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if dim not in (1, -3) or not isinstance(first, list | tuple):
                return None
            pairs = [(ghosts.get(a), self.env[a].shape[1]) for a in first if isinstance(a, fx.Node)]
            pairs = [(g, c) for g, c in pairs if g is not None]
            total = sum(c for _, c in pairs)
            return sum(g * (c / total) for g, c in pairs) if pairs else None
        if node.op == "call_function" and node.target in (F.avg_pool2d, F.adaptive_avg_pool2d):
            return _pooled(lambda t: node.target(t, *args[1:], **kwargs), ghosts.get(first))
        if node in self.same_pos:  # per-position ops: the input's carrier
            return ghosts.get(self.same_pos[node])
        if name in _GHOST_OPS or node.op == "call_function" and node.target in (
                torch.permute, torch.transpose, torch.swapaxes, torch.movedim):
            ghost = ghosts.get(first)
            if ghost is None or self.ghost_for(first, self.env[first],
                                               self.cdim(first, self.env[first])) is None:
                return None
            return self.plain_grad(node, (ghost, *args[1:]), kwargs)
        return None


def _attr(gm: fx.GraphModule, target: str) -> object:
    value: object = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value.detach() if isinstance(value, torch.Tensor) else value


def _has_tensor(value: object) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, tuple | list) and any(isinstance(v, torch.Tensor) for v in value)


def _pooled(pool, ghost: torch.Tensor | None) -> torch.Tensor | None:
    """An average pool of a ghost normalised by the pool of ones: each window's weights sum
    to 1 (padding holds no PFV)."""
    if ghost is None:
        return None
    return pool(ghost) / pool(torch.ones_like(ghost))


def replay(gm: fx.GraphModule, x: torch.Tensor, rec: Recorder | None, eps: float,
           pattern: dict[str, torch.Tensor] | None = None, freeze: bool = False,
           bias_scale: float = 1.0) -> Replay:
    """Run the traced model on ``x`` with the SRD rules (``rec=None``: plain autograd).

    ``pattern`` (a dict) records the ReLU masks and max-pool indices, or with ``freeze``
    applies recorded ones (APOP); ``bias_scale`` multiplies every (BN-folded) bias.
    """
    runner = _Runner(gm, rec, eps)
    runner.pattern, runner.freeze, runner.bias_scale = pattern, freeze, float(bias_scale)
    return runner.run(x)
