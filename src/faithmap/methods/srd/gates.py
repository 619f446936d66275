"""Which ops are gates, which freeze a coefficient (the frozen-gate principle).

**Gates** (segment boundaries) are the elementwise activations v = f(z) with f(0) = 0: each
is v = g(z) ⊙ z with the gate g(z) = f(z)/z frozen at the forward pass — ReLU g ∈ {0, 1}
**[paper]**, LeakyReLU/PReLU g ∈ {slope, 1}, ReLU6/Hardtanh clips, SiLU σ(z), GELU Φ(z),
Hardswish, ELU/CELU/SELU, Mish, Tanh, ... **[ours]**. z (the pre-activation) is the target
vector of the sharing ratios; v the PFVs that carry relevance up.

**Freezing ops** produce a *coefficient* that multiplies the activations: sigmoid and hard
sigmoid (squeeze-excitation scales), softmax (attention weights). Their output — and every
op that only feeds such coefficients (the squeeze-excitation branch, q and k of attention)
— is computed by a plain forward and detached: the product with the activations is then a
linear map, and autograd does its bias-free part **[ours]**.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

GATE_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.SiLU, nn.GELU,
                nn.Hardswish, nn.ELU, nn.CELU, nn.SELU, nn.Mish, nn.Tanh, nn.Softsign,
                nn.Hardshrink, nn.Softshrink, nn.Tanhshrink, nn.RReLU)
GATE_FUNCTIONS = {F.relu, torch.relu, torch.relu_, F.relu_, F.relu6, F.leaky_relu,
                  F.leaky_relu_, F.gelu, F.silu, F.hardswish, F.elu, F.elu_, F.celu, F.selu,
                  F.mish, F.hardtanh, F.hardtanh_, torch.tanh, F.tanh, F.softsign}
GATE_METHODS = {"relu", "relu_", "tanh", "tanh_"}
FREEZING_MODULES = (nn.Sigmoid, nn.Hardsigmoid, nn.Softmax)
FREEZING_FUNCTIONS = {torch.sigmoid, F.sigmoid, F.hardsigmoid, F.softmax, torch.softmax}
FREEZING_METHODS = {"sigmoid", "sigmoid_", "softmax"}
ELEMENTWISE_FREEZING = {torch.sigmoid, F.sigmoid, F.hardsigmoid, "sigmoid", "sigmoid_"}
_POSITIONAL = {F.leaky_relu: 1, F.elu: 1, F.celu: 1, F.hardtanh: 2}
BILINEAR = {torch.matmul, operator.matmul, torch.bmm, torch.einsum, "matmul", "bmm"}


def gate_fn(node: fx.Node, module: nn.Module | None, args: tuple, kwargs: dict
            ) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The out-of-place activation of a gate node, or ``None`` if the node is no gate."""
    if module is not None:
        if not isinstance(module, GATE_MODULES):
            return None
        if isinstance(module, nn.Hardtanh) and not module.min_val <= 0 <= module.max_val:
            return None
        if getattr(module, "inplace", False):
            return lambda z: module(z.clone())
        return module
    extra = args[1:]
    kw = {k: v for k, v in kwargs.items() if k != "inplace"}
    if node.op == "call_function" and node.target in GATE_FUNCTIONS:
        fn = node.target
        if fn in (torch.relu_, F.relu_, F.leaky_relu_, F.elu_, F.hardtanh_):
            fn = {torch.relu_: torch.relu, F.relu_: torch.relu, F.leaky_relu_: F.leaky_relu,
                  F.elu_: F.elu, F.hardtanh_: F.hardtanh}[fn]
        extra = extra[:_POSITIONAL.get(fn, 0)]  # drop a positional ``inplace``
        return lambda z: fn(z, *extra, **kw)
    if node.op == "call_method" and node.target in GATE_METHODS:
        name = str(node.target).rstrip("_")
        return lambda z: getattr(z, name)()
    if node.op in ("call_function", "call_method") and node.target in (torch.clamp, "clamp",
                                                                         "clamp_", "clip"):
        lo = kwargs.get("min", extra[0] if extra else None)
        hi = kwargs.get("max", extra[1] if len(extra) > 1 else None)
        if (lo is None or lo <= 0) and (hi is None or hi >= 0) and \
                not isinstance(lo, torch.Tensor) and not isinstance(hi, torch.Tensor):
            return lambda z: torch.clamp(z, lo, hi)
    return None


def is_freezing(node: fx.Node, module: nn.Module | None) -> bool:
    if node.op == "call_module":
        return isinstance(module, FREEZING_MODULES)
    if node.op == "call_function":
        return node.target in FREEZING_FUNCTIONS
    return node.op == "call_method" and node.target in FREEZING_METHODS


def coefficient_nodes(gm: fx.GraphModule) -> set[fx.Node]:
    """Nodes whose every use feeds a coefficient: freezing ops, and (backwards) nodes all of
    whose users are such coefficient nodes. They run as a plain, detached forward."""
    coef: set[fx.Node] = set()
    for node in reversed(list(gm.graph.nodes)):
        module = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
        feeds_coef = bool(node.users) and node.op not in ("placeholder", "output") and \
            all(u in coef for u in node.users)
        if is_freezing(node, module) or feeds_coef:
            coef.add(node)
    return coef
