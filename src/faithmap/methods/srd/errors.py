"""SRD's named errors (each also a ``ValueError``)."""

from __future__ import annotations

from torch import fx

from ...core.errors import FaithmapError, UnsupportedLayerError


class CutError(FaithmapError, ValueError):
    """``start="cam"`` or ``contrastive=True`` restart the recursion from one map at the last
    spatial ReLU; raised when that ReLU is not a cut of the graph (a path from the input to
    the output bypasses it) or when there is none — the map would silently miss a path."""


class LayerError(FaithmapError, ValueError):
    """A layer or position that :meth:`SRD.erf` cannot seed (a fully connected ReLU, a
    position outside the map)."""


def unsupported(gm: fx.GraphModule, node: fx.Node, reason: str) -> UnsupportedLayerError:
    """The refusal for ``node``: the module's path and type (for an operation: the module it
    runs in) and the op."""
    gm = gm.meta.get("srd_root", gm)
    if node.op == "call_module":
        return UnsupportedLayerError(str(node.target), gm.get_submodule(str(node.target)), reason)
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack.values())[-1][0] if stack else ""
    module = gm.get_submodule(path) if path else gm
    what = getattr(node.target, "__name__", str(node.target))
    return UnsupportedLayerError(path, module, f"operation {what!r} ({reason})")
