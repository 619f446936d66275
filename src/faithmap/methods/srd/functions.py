"""SRD rules for functions and methods applied to activations (the replay's ``call_function``
and ``call_method`` nodes).

* ``a + b`` of two activations: linear; ``x + c`` / ``x - c`` with a constant c (positional
  embedding, ...): a per-position bias (:func:`~.bias.add_bias`);
* ``x * c`` / ``x / c`` with c constant or a frozen coefficient (squeeze-excitation scale,
  layer scale): linear; ``x * σ(x)`` (a gate written out): a gate boundary;
* ``torch.cat`` with a constant part (class token): :class:`~.bias.ConstShare`;
* functional norms and ``F.linear``: :mod:`.norms`, the per-position bias rule;
* reshapes, permutes, pools, slicing, zero padding, stochastic depth (eval): linear,
  autograd.

Anything else raises :class:`UnsupportedLayerError` naming the module path, type and op. A
mixin of the runner in :mod:`.graph` (it uses the runner's ``boundary``, ``bias``, ``cdim``
and ``kind``).
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx

from . import norms
from .bias import ConstShare
from .errors import unsupported
from .gates import BILINEAR, ELEMENTWISE_FREEZING, gate_fn

ADD_FN = {operator.add, operator.iadd, torch.add}
_SUB_FN = {operator.sub, operator.isub, torch.sub}
_MUL_FN = {operator.mul, operator.imul, torch.mul}
_DIV_FN = {operator.truediv, operator.itruediv, torch.div}
_LINEAR_FN = {torch.flatten, F.adaptive_avg_pool2d, F.avg_pool2d, torch.cat, torch.mean,
              operator.getitem, getattr, F.max_pool2d, F.adaptive_max_pool2d, torch.permute,
              torch.transpose, torch.reshape, torch.roll, torch.chunk, torch.split,
              torch.unbind, torch.squeeze, torch.unsqueeze, torch.narrow, torch.flip,
              torch.sum, torch.stack, operator.neg, torch.neg, torch.swapaxes,
              F.adaptive_avg_pool1d, F.avg_pool1d, torch.movedim, F.dropout, torch.clone,
              torch.select, F.channel_shuffle, torch.channel_shuffle}
_LINEAR_METHODS = {"view", "reshape", "flatten", "contiguous", "size", "dim", "mean", "sum",
                   "permute", "transpose", "chunk", "split", "unbind", "squeeze", "unsqueeze",
                   "expand", "expand_as", "repeat", "narrow", "flip", "roll", "clone",
                   "unflatten", "swapaxes", "movedim", "select", "neg", "view_as",
                   "reshape_as", "__getitem__", "type_as", "float", "double", "to"}
_LINEAR_WRAPPED = {"_patch_merging_pad"}  # torch.fx.wrap-ped linear helpers (Swin)
_SAME_POSITIONS = {"contiguous", "clone", "neg", "float", "double", "to", "type_as"}


class FunctionRules:
    """The function/method rules of the replay (mixed into ``graph._Runner``)."""

    def function(self, node: fx.Node, args: tuple, kwargs: dict) -> object:
        """The rule for a call_function / call_method node with a signal argument."""
        target = node.target
        name = target if node.op == "call_method" else getattr(target, "__name__", None)
        fn = gate_fn(node, None, args, kwargs)
        if fn is not None:
            return self.boundary(node, args[0]) if target in (
                F.relu, torch.relu, torch.relu_, "relu", "relu_") else self.boundary(
                node, args[0], fn)
        kinds = [self.kind(a) for a in node.args]
        if node.op == "call_function" and target in ADD_FN | _SUB_FN or \
                name in ("add", "add_", "sub", "sub_"):
            return self.add(node, args, kwargs, kinds)
        if node.op == "call_function" and target in _MUL_FN | _DIV_FN or \
                name in ("mul", "mul_", "div", "div_"):
            return self.mul(node, args, kwargs, kinds)
        if target in BILINEAR:
            if kinds.count("signal") > 1 or (target is torch.einsum and
                                             sum(self.kind(a) == "signal" for a in
                                                 node.args[1:]) > 1):
                raise unsupported(self.gm, node, "a product of two activations that is "
                                   "not a frozen coefficient (e.g. attention weights)")
            return self.plain_grad(node, args, kwargs)
        if node.op == "call_function" and self.native() and target in (
                F.layer_norm, F.batch_norm, F.group_norm):
            return self.plain_grad(node, args, kwargs)
        if node.op == "call_function":
            if target is torch.cat or target is torch.stack:
                return self.cat(node, args, kwargs)
            if target is F.linear:
                w, b = args[1], args[2] if len(args) > 2 else kwargs.get("bias")
                y = F.linear(args[0], w.detach())
                return y if b is None else self.bias(y, args[0], b.detach(), args[0].dim() - 1,
                                                     node.args[0])
            if target is F.layer_norm:
                a = list(args) + [None] * (5 - len(args))
                w, b = kwargs.get("weight", a[2]), kwargs.get("bias", a[3])
                eps = kwargs.get("eps", a[4] if a[4] is not None else 1e-5)
                self.same_pos[node] = node.args[0]
                ghost = self.ghost_for(node.args[0], args[0], args[0].dim() - 1)
                return norms.layer_norm(args[0], tuple(args[1]), w,
                                        None if b is None else self.scaled(b), eps, ghost)
            if target is F.batch_norm:
                return self.batch_norm_fn(node, args, kwargs)
            if target is F.group_norm:
                a = list(args) + [None] * (5 - len(args))
                self.same_pos[node] = node.args[0]
                return norms.group_norm(args[0], a[1], a[2], a[3], a[4] or 1e-5,
                                        self.ghost_for(node.args[0], args[0], 1))
            if target is F.pad:
                mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
                value = kwargs.get("value", args[3] if len(args) > 3 else None)
                if mode != "constant" or value not in (None, 0, 0.0):
                    raise unsupported(self.gm, node, "padding other than with zeros")
                return self.plain_grad(node, args, kwargs)
            if name in ("stochastic_depth", "drop_path"):  # eval: the identity
                training = kwargs.get("training", args[3] if len(args) > 3 else False)
                if training:
                    raise unsupported(self.gm, node, "stochastic depth in training mode")
                self.same_pos[node] = node.args[0]
                return args[0]
            if target in _LINEAR_FN or name in _LINEAR_WRAPPED:
                if target is F.adaptive_avg_pool2d and args[1] in (1, (1, 1)):
                    self.gap[node] = node.args[0]
                self.no_frozen(node, kinds)
                return self.plain_grad(node, args, kwargs)
        if node.op == "call_method" and target in _LINEAR_METHODS:
            if target == "mean" and _gap_source(node) is not None:
                self.gap[node] = node.args[0]
            if target in _SAME_POSITIONS:
                self.same_pos[node] = node.args[0]
            return self.plain_grad(node, args, kwargs)
        raise unsupported(self.gm, node, "no SRD rule for this operation")

    def plain_grad(self, node: fx.Node, args: tuple, kwargs: dict) -> object:
        """A bias-free linear op: autograd."""
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        return getattr(args[0], str(node.target))(*args[1:], **kwargs)

    def no_frozen(self, node: fx.Node, kinds: list[str]) -> None:
        if "frozen" in kinds:
            raise unsupported(self.gm, node, "an input-dependent coefficient (a sigmoid, "
                               "softmax or product branch) enters the activations additively")

    def add(self, node: fx.Node, args: tuple, kwargs: dict, kinds: list[str]) -> torch.Tensor:
        sub = node.target in _SUB_FN or node.target in ("sub", "sub_")
        if kwargs.get("alpha", 1) != 1 or len(args) != 2:
            raise unsupported(self.gm, node, "only a + b and a - b (no alpha)")
        self.no_frozen(node, kinds)
        a, b = args
        if kinds == ["signal", "signal"]:
            return a - b if sub else a + b
        i = kinds.index("signal")
        x, c = (a, b) if i == 0 else (b, a)
        c = torch.as_tensor(c, dtype=x.dtype, device=x.device)
        if sub and i == 1:  # c - x = (-x) + c
            x = -x
        elif sub:
            c = -c
        self.same_pos[node] = node.args[i]
        return self.bias(x, x, c, self.cdim(node.args[i], x), node.args[i])

    def mul(self, node: fx.Node, args: tuple, kwargs: dict, kinds: list[str]) -> torch.Tensor:
        div = node.target in _DIV_FN or node.target in ("div", "div_")
        if len(args) != 2 or kwargs:
            raise unsupported(self.gm, node, "only a * b and a / b")
        a, b = args
        if kinds == ["signal", "signal"]:
            raise unsupported(self.gm, node, "a product of two activations")
        i = kinds.index("signal")
        if div and i == 1:
            raise unsupported(self.gm, node, "division by an activation")
        other = node.args[1 - i]
        x = args[i]
        if kinds[1 - i] == "frozen" and isinstance(other, fx.Node) and not div and \
                _elementwise_of(other, node.args[i]) and args[1 - i].shape == x.shape:
            s = args[1 - i]  # x * sigmoid(x) and the like: a gate written out
            return self.boundary(_Arg(node, node.args[i]), x, lambda z, s=s: z * s)
        self.same_pos[node] = node.args[i]
        c = args[1 - i]
        c = c.detach() if isinstance(c, torch.Tensor) else c
        return x / c if div else x * c

    def cat(self, node: fx.Node, args: tuple, kwargs: dict) -> torch.Tensor:
        parts = node.args[0]
        kinds = [self.kind(p) for p in parts]
        self.no_frozen(node, kinds)
        out = node.target(*args, **kwargs)
        if "const" not in kinds or node.target is torch.stack or self.rec is None:
            return out
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        src = parts[kinds.index("signal")]
        cdim = self.cdim(src, self.env[src])
        masks = [torch.full_like(t.sum(dim=cdim, keepdim=True), k == "const", dtype=torch.bool)
                 for t, k in zip(args[0], kinds)]
        const = torch.cat(masks, dim=dim)
        return ConstShare.apply(out, const, cdim)

    def batch_norm_fn(self, node: fx.Node, args: tuple, kwargs: dict) -> torch.Tensor:
        names = ("input", "running_mean", "running_var", "weight", "bias", "training",
                 "momentum", "eps")
        a = dict(zip(names, args)) | kwargs
        if a.get("training") or a.get("running_mean") is None:
            raise unsupported(self.gm, node, "batch norm with batch statistics")
        self.same_pos[node] = node.args[0]
        b = a.get("bias")
        return norms.batch_norm(args[0], a["running_mean"] * self.bias_scale
                                if self.bias_scale != 1.0 else a["running_mean"],
                                a["running_var"], a.get("weight"),
                                None if b is None else self.scaled(b), a.get("eps", 1e-5),
                                self.ghost_for(node.args[0], args[0], 1))


class _Arg:
    """A stand-in node for a gate written out as ``x * f(x)``: the boundary's name is the
    product's, its pre-activation ``x``."""

    def __init__(self, node: fx.Node, z: fx.Node) -> None:
        self.name, self.args = node.name, (z,)


def _elementwise_of(node: fx.Node, source: fx.Node) -> bool:
    """Whether ``node`` is sigmoid-like of ``source`` itself (x * σ(x): SiLU written out)."""
    target = node.target if node.op != "call_method" else str(node.target)
    return bool(node.args) and node.args[0] is source and (
        target in ELEMENTWISE_FREEZING or node.op == "call_module")


def _gap_source(node: object) -> fx.Node | None:
    """The 4-D input of a global average pool node, else None."""
    if not isinstance(node, fx.Node):
        return None
    if node.op == "call_method" and node.target == "mean":
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        if dims is not None and sorted(d % 4 for d in dims) == [2, 3]:
            return node.args[0]
    return None
