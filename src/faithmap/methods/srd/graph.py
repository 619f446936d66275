"""SRD segment graph: trace a model with torch.fx and replay it with the SRD rules.

Standard ``torch.nn`` modules are leaves; user modules (residual blocks, ...) are traced
through. The replay never modifies the model: BatchNorm is folded into new tensors, and
ReLUs become :class:`~.rules.Boundary` nodes (in-place or reused ReLUs are just nodes).
Anything the rules do not cover raises :class:`UnsupportedLayerError` with the path and
type of the module it belongs to.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from ...core.errors import UnsupportedLayerError
from ...core.modules import Normalize
from .rules import AffineConv, Boundary, Recorder, ghost_like

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_PASS = (nn.Dropout, nn.Identity, nn.Flatten, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_RELU_FN = {F.relu, torch.relu, torch.relu_}
_ADD_FN = {operator.add, operator.iadd, torch.add}
_LINEAR_FN = {torch.flatten, F.adaptive_avg_pool2d, F.avg_pool2d, torch.cat, torch.mean,
              operator.getitem, getattr}
_LINEAR_METHODS = {"view", "reshape", "flatten", "contiguous", "size", "dim", "mean"}


def _is_normalize(m: nn.Module) -> bool:
    return isinstance(m, Normalize)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, _CONTAINERS):
            return False
        return type(m).__module__.startswith("torch.nn") or _is_normalize(m)


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


def is_cut(gm: fx.GraphModule, name: str) -> bool:
    """Whether every path from the input to the output passes through node ``name``."""
    seen: set[fx.Node] = set()
    todo = [n for n in gm.graph.nodes if n.op == "placeholder"]
    while todo:
        node = todo.pop()
        if node in seen or node.name == name:
            continue
        if node.op == "output":
            return False
        seen.add(node)
        todo.extend(node.users)
    return True


def _unsupported(gm: fx.GraphModule, node: fx.Node, reason: str) -> UnsupportedLayerError:
    gm = gm.meta.get("srd_root", gm)
    if node.op == "call_module":
        return UnsupportedLayerError(str(node.target), gm.get_submodule(str(node.target)), reason)
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack.values())[-1][0] if stack else ""
    module = gm.get_submodule(path) if path else gm
    what = getattr(node.target, "__name__", str(node.target))
    return UnsupportedLayerError(path, module, f"operation {what!r} ({reason})")


def _fold(weight: torch.Tensor, bias: torch.Tensor, bn: nn.Module) -> tuple:
    """BN(W x + b) = W' x + b' with eval statistics (new tensors)."""
    scale = bn.weight.detach() if bn.weight is not None else torch.ones_like(bn.running_var)
    shift = bn.bias.detach() if bn.bias is not None else torch.zeros_like(bn.running_var)
    a = scale / torch.sqrt(bn.running_var + bn.eps)
    w = weight * a.view(-1, *([1] * (weight.dim() - 1)))
    return w, (bias - bn.running_mean) * a + shift


def _gap_source(node: object) -> fx.Node | None:
    """The 4-D input of a global average pool node, else None."""
    if not isinstance(node, fx.Node):
        return None
    if node.op == "call_method" and node.target == "mean":
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        if dims is not None and sorted(d % 4 for d in dims) == [2, 3]:
            return node.args[0]
    return None


class _Runner:
    def __init__(self, gm: fx.GraphModule, rec: Recorder | None, eps: float) -> None:
        self.gm, self.rec, self.eps = gm, rec, eps
        self.env: dict[fx.Node, object] = {}
        self.ghosts: dict[fx.Node, torch.Tensor | None] = {}  # carriers (with a recorder)
        self.pool_idx: dict[fx.Node, torch.Tensor] = {}
        self.folded: dict[fx.Node, torch.Tensor] = {}
        self.gap: dict[fx.Node, fx.Node] = {}  # pooled node -> 4-D source node
        self.result: Replay | None = None
        self.boundaries: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        self.inputs: torch.Tensor | None = None
        self.pattern: dict[str, torch.Tensor] | None = None  # APOP: recorded or frozen
        self.freeze = False
        self.bias_scale = 1.0  # APOP's shrunk-bias variant

    def affine(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
               stride: tuple = (1, 1), padding: tuple = (0, 0),
               source: object = None) -> torch.Tensor:
        """conv2d with the SRD rule; ``source`` is the node whose ghost carries relevance
        onto zero PFVs of ``x`` (reshaped to x's N×1×h×w)."""
        if self.bias_scale != 1.0:
            b = b * self.bias_scale
        if self.rec is None:
            return F.conv2d(x, w, b, stride, padding)
        ghost = self.ghosts.get(source) if isinstance(source, fx.Node) else None
        if ghost is not None:  # one carrier value per PFV of x, else no carrier
            shape = (x.shape[0], 1, *x.shape[2:])
            ghost = ghost.reshape(shape) if ghost.numel() == math.prod(shape) else None
        return AffineConv.apply(x, ghost, w, b, tuple(stride), tuple(padding))

    def boundary(self, node: fx.Node, z: torch.Tensor) -> torch.Tensor:
        if self.pattern is not None:
            if self.freeze:
                return z * self.pattern[node.name]
            self.pattern[node.name] = (z > 0).to(z.dtype)
        if self.rec is None:
            v = torch.relu(z)
        else:
            v, self.ghosts[node] = Boundary.apply(z, node.name, self.rec)
        self.boundaries.append((node.name, z, v))
        return v

    def with_bn(self, node: fx.Node, w: torch.Tensor, b: torch.Tensor) -> tuple:
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_module":
            bn = self.gm.get_submodule(str(users[0].target))
            if isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.track_running_stats:
                return (*_fold(w, b, bn), users[0])
        return w, b, None

    def conv(self, node: fx.Node, m: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" \
                or isinstance(m.padding, str):
            raise _unsupported(self.gm, node, "only groups=1, dilation=1, numeric zero padding")
        b = m.bias.detach() if m.bias is not None else m.weight.new_zeros(m.out_channels)
        w, b, bn = self.with_bn(node, m.weight.detach(), b)
        out = self.affine(x, w, b, m.stride, m.padding, node.args[0])
        if bn is not None:
            self.folded[bn] = out
        return out

    def linear(self, node: fx.Node, m: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        b = m.bias.detach() if m.bias is not None else m.weight.new_zeros(m.out_features)
        w, b, bn = self.with_bn(node, m.weight.detach(), b)
        src = node.args[0]
        flat_src = None
        if isinstance(src, fx.Node) and (src.op, src.target) in (
                ("call_function", torch.flatten), ("call_method", "flatten"),
                ("call_method", "view"), ("call_method", "reshape")) or (
                isinstance(src, fx.Node) and src.op == "call_module"
                and isinstance(self.gm.get_submodule(str(src.target)), nn.Flatten)):
            inner = self.env[src.args[0]]
            if isinstance(inner, torch.Tensor) and inner.dim() == 4 and x.dim() == 2:
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
            raise _unsupported(self.gm, node, f"Linear on a {x.dim()}-D input")
        if bn is not None:
            self.folded[bn] = out
        return out

    def module(self, node: fx.Node, args: tuple) -> object:
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
        if isinstance(m, _PASS):
            if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
                self.gap[node] = node.args[0]
            return x if isinstance(m, (nn.Dropout, nn.Identity)) else m(x)
        if _is_normalize(m) and node.args[0].op == "placeholder":
            self.inputs = ((x - m.mean) / m.std).detach().requires_grad_(True)
            self.ghosts[node] = self.ghosts.get(node.args[0])
            return self.inputs
        raise _unsupported(self.gm, node, "no SRD rule for this layer")

    def run(self, x: torch.Tensor) -> Replay:
        for node in self.gm.graph.nodes:
            args = fx.node.map_arg(node.args, lambda n: self.env[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: self.env[n])
            if node.op == "placeholder":
                if self.inputs is not None:
                    raise _unsupported(self.gm, node, "more than one input")
                self.inputs = x.detach().requires_grad_(True)
                self.env[node] = self.inputs
                if self.rec is not None:
                    self.ghosts[node] = ghost_like(x).requires_grad_(True)
                continue
            if node.op == "output":
                out = args[0]
                if not isinstance(out, torch.Tensor):
                    raise _unsupported(self.gm, node, "the model must return one tensor")
                assert self.inputs is not None
                ghost = next((self.ghosts.get(n) for n in self.gm.graph.nodes
                              if n.op == "placeholder"), None)
                return Replay(self.inputs, out, self.boundaries, ghost, self.gm)
            self.env[node] = self.call(node, args, kwargs)
            if self.rec is not None and node not in self.ghosts:
                self.ghosts[node] = self.carry(node, args, kwargs)
        raise RuntimeError("graph without output")

    def call(self, node: fx.Node, args: tuple, kwargs: dict) -> object:
        if node.op == "call_module":
            return self.module(node, args)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if node.op == "call_function":
            if node.target in _RELU_FN:
                return self.boundary(node, args[0])
            if node.target in _ADD_FN:
                if len(tensors) != 2 or kwargs.get("alpha", 1) != 1:
                    raise _unsupported(self.gm, node, "only tensor + tensor adds")
                return args[0] + args[1]
            if node.target in _LINEAR_FN:
                if node.target is F.adaptive_avg_pool2d and args[1] in (1, (1, 1)):
                    self.gap[node] = node.args[0]
                return node.target(*args, **kwargs)
        if node.op == "call_method":
            if node.target in ("relu", "relu_"):
                return self.boundary(node, args[0])
            if node.target in ("add", "add_") and len(tensors) == 2 and not kwargs:
                return args[0] + args[1]
            if node.target in _LINEAR_METHODS:
                if node.target == "mean" and _gap_source(node) is not None:
                    self.gap[node] = node.args[0]
                return getattr(args[0], str(node.target))(*args[1:], **kwargs)
        raise _unsupported(self.gm, node, "no SRD rule for this operation")

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
        if node.op == "call_function" and node.target in _ADD_FN or name in ("add", "add_"):
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
        if name == "contiguous":
            return ghosts.get(first)
        return None


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
