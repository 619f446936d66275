"""Every registered method on one model of every torchvision family and timm ViT/DeiT (issue 17).

Each cell builds the model with random weights (seed 0, 10 classes, a zero-initialised
classifier re-drawn so the logits depend on the input), runs ``fm.explain`` on two seeded
sample photos (skimage, resized to the family's smallest accepted input) with cheap options
(:data:`CHEAP`: a few steps/samples), and records

- ``ok``: the map is finite, has the promised shape (N×C×H×W, or N×1×H×W for spatial
  methods), is not all zero, and the model's fingerprint (parameters, buffers, flags,
  hooks) is unchanged;
- ``refused``: a :class:`faithmap.FaithmapError` (e.g. ``UnsupportedLayerError``) whose
  message names the module, recorded verbatim;
- ``flagged``: a boundary method found no decision boundary (a random model that predicts
  one class on the whole input box): NaN rows exactly for the samples it lists in
  ``metadata["fallback_samples"]`` (its documented per-sample flag), the model unchanged;
- ``FAIL``: anything else (a crash deep inside, a NaN map, a changed model).

SRD cells also record the relative conservation error |Σ_p R_p − f_y(x)| / |f_y(x)|.

    OMP_NUM_THREADS=1 python benchmarks/methods_matrix.py [--families a,b] [--methods m,n]
        [--markdown docs/methods/matrix.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

import faithmap as fm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from model_checks import assert_same_fingerprint, fingerprint  # noqa: E402

# family → (builder, keyword arguments, input side). Sides are the smallest each builder
# accepts (vit_b_16 built for 64² inputs: its image_size argument; maxvit_t needs 224²).
# googlenet / inception_v3 keep PyTorch's default init: with init_weights=True (truncated
# normal) and unit batch-norm statistics inception_v3's logits reach ~1e7 and saturate.
FAMILIES: dict[str, tuple[str, dict, int]] = {
    "alexnet": ("torchvision:alexnet", {}, 63),
    "convnext": ("torchvision:convnext_tiny", {}, 32),
    "densenet": ("torchvision:densenet121", {}, 32),
    "efficientnet": ("torchvision:efficientnet_b0", {}, 32),
    "efficientnet_v2": ("torchvision:efficientnet_v2_s", {}, 32),
    "googlenet": ("torchvision:googlenet", {"aux_logits": False, "init_weights": False}, 32),
    "inception_v3": ("torchvision:inception_v3", {"aux_logits": False, "init_weights": False},
                     75),
    "maxvit": ("torchvision:maxvit_t", {}, 224),
    "mnasnet": ("torchvision:mnasnet0_5", {}, 32),
    "mobilenet_v2": ("torchvision:mobilenet_v2", {}, 32),
    "mobilenet_v3": ("torchvision:mobilenet_v3_small", {}, 32),
    "regnet": ("torchvision:regnet_y_400mf", {}, 32),
    "resnet": ("torchvision:resnet18", {}, 32),
    "resnext": ("torchvision:resnext50_32x4d", {}, 32),
    "shufflenet": ("torchvision:shufflenet_v2_x0_5", {}, 32),
    "squeezenet": ("torchvision:squeezenet1_1", {}, 32),
    "swin": ("torchvision:swin_t", {}, 32),
    "swin_v2": ("torchvision:swin_v2_t", {}, 32),
    "vgg": ("torchvision:vgg11_bn", {}, 32),
    "vit": ("torchvision:vit_b_16", {"image_size": 64}, 64),
    "wide_resnet": ("torchvision:wide_resnet50_2", {}, 32),
    "timm_vit": ("timm:vit_tiny_patch16_224", {"img_size": 64}, 64),
    "timm_deit": ("timm:deit_tiny_patch16_224", {"img_size": 64}, 64),
}

# the default test run's subset: a plain CNN, a depthwise/Hardswish/squeeze-excitation net,
# a channel-shuffle net and a token model
SUBSET = ("resnet", "mobilenet_v3", "shufflenet", "timm_deit")

LRP = "zennit:EpsilonPlusFlat"
METHODS = (*[m for m in fm.available_methods() if m != "comet"], LRP)

_SEARCH = {"steps": 10, "cw_steps": 5, "refine_steps": 3}
CHEAP: dict[str, dict] = {
    "integrated_gradients": {"n_steps": 4},
    "smoothgrad": {"n_samples": 3},
    "vargrad": {"n_samples": 3},
    "boundary_smoothgrad": {"n_samples": 2, **_SEARCH},
    "bsm": _SEARCH,
    "big": {"n_steps": 4, **_SEARCH},
    "neflag": {"n_samples": 8, "steps": 5},
    "dance": {"patch": 32, "steps": 10, "rounds": 1},
    # a random model's ReLU(Σ α A) can be all negative, hence zero: keep the signed map
    "gradcam": {"relu": False},
}


# cheaper still where the input is 224² (maxvit): 4 DANCE patches, 2 IG steps; NeFLAG's
# defaults on squeezenet (ReLU'd logits: with 8 neighbours × 5 steps one photo's map was 0)
FAMILY_CHEAP: dict[str, dict[str, dict]] = {
    "squeezenet": {"neflag": {}},
    "maxvit": {"dance": {"patch": 112, "steps": 5, "rounds": 1},
               "integrated_gradients": {"n_steps": 2}},
}


def options(family: str, method: str) -> dict:
    """The cheap options of ``method`` on ``family``."""
    return FAMILY_CHEAP.get(family, {}).get(method, CHEAP.get(method, {}))


def build(family: str) -> tuple[nn.Module, torch.Tensor]:
    """The family's model (random weights, eval mode) and two seeded sample photos."""
    from skimage import data as skdata

    spec, kwargs, side = FAMILIES[family]
    kind, _, name = spec.partition(":")
    torch.manual_seed(0)
    if kind == "timm":
        import timm

        model = timm.create_model(name, pretrained=False, num_classes=10, **kwargs)
    else:
        import torchvision

        model = torchvision.models.get_model(name, weights=None, num_classes=10, **kwargs)
    for m in model.modules():  # a zero-initialised head gives constant logits
        if isinstance(m, nn.Linear) and not m.weight.detach().any():
            nn.init.normal_(m.weight, std=0.02)
    images = [skdata.astronaut(), skdata.coffee()]
    x = torch.cat([nn.functional.interpolate(
        torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 255, size=(side, side),
        mode="bilinear", antialias=True, align_corners=False) for im in images]).clamp(0, 1)
    return model.eval(), x


def run_cell(model: nn.Module, x: torch.Tensor, method: str,
             method_options: dict | None = None) -> dict:
    """One method on one model: ``{"status": "ok"|"refused"|"flagged"|"FAIL", "detail": ...,
    ...}`` (options: ``CHEAP[method]`` unless given)."""
    before = fingerprint(model)
    start = time.perf_counter()
    cell: dict = {"method": method}
    try:
        attr, meta = fm.explain(model, x, method, return_metadata=True,
                                **(CHEAP.get(method, {}) if method_options is None
                                   else method_options))
    except fm.FaithmapError as exc:
        cell.update(status="refused", detail=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - recorded as a failure of the cell
        cell.update(status="FAIL", detail=f"{type(exc).__name__}: {exc}")
    else:
        spatial = attr.shape[1] == 1 and x.shape[1] != 1
        want = (len(x), 1, *x.shape[2:]) if spatial else tuple(x.shape)
        problems = []
        if tuple(attr.shape) != want:
            problems.append(f"shape {tuple(attr.shape)}")
        if not bool(torch.isfinite(attr).all()):
            problems.append("non-finite values")
        elif not bool(attr.abs().amax(dim=tuple(range(1, attr.dim()))).gt(0).all()):
            problems.append("an all-zero map")
        bad = [i for i in range(len(x)) if not bool(torch.isfinite(attr[i]).all())]
        if bad and bad == list(meta.get("fallback_samples", [])) and problems == [
                "non-finite values"]:
            cell.update(status="flagged", detail=f"no boundary found for samples {bad} "
                        "(metadata['fallback_samples'])")
        else:
            cell.update(status="FAIL" if problems else "ok", detail=", ".join(problems))
        if method == "srd":
            with torch.no_grad():
                logits = model(x)
            start_rel = logits.gather(1, logits.argmax(1, keepdim=True)).squeeze(1)
            err = (attr.sum(dim=(1, 2, 3)) - start_rel).abs() / start_rel.abs()
            cell["conservation"] = float(err.max())
        if "layer" in meta:
            cell["layer"] = meta["layer"]
    cell["seconds"] = time.perf_counter() - start
    try:
        assert_same_fingerprint(before, fingerprint(model))
    except AssertionError as exc:
        cell.update(status="FAIL", detail=f"model changed: {exc}")
    return cell


def markdown(rows: dict[str, dict[str, dict]], methods: tuple[str, ...]) -> str:
    """The families × methods table (✓ runs, ✗ refused by name, ○ flagged: no boundary
    found, FAIL), then the refusals."""
    short = {LRP: "lrp"}
    head = "| family | " + " | ".join(short.get(m, m) for m in methods) + " | SRD conservation |"
    lines = [head, "|" + "---|" * (len(methods) + 2)]
    notes = []
    for family, cells in rows.items():
        marks = []
        for m in methods:
            cell = cells.get(m)
            if cell is None:
                marks.append("–")
            elif cell["status"] == "ok":
                marks.append("✓")
            else:
                marks.append({"refused": "✗", "flagged": "○"}.get(cell["status"], "FAIL"))
                notes.append(f"- {family} / {short.get(m, m)}: {cell['detail'][:300]}")
        srd = cells.get("srd", {})
        cons = f"{srd['conservation']:.1e}" if "conservation" in srd else "–"
        lines.append(f"| {family} | " + " | ".join(marks) + f" | {cons} |")
    return "\n".join(lines + [""] + notes) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    methods = tuple(args.methods.split(","))
    rows: dict[str, dict[str, dict]] = {}
    total = time.perf_counter()
    families = args.families.split(",")
    for family in sorted(families, key=lambda f: f == "maxvit"):  # the slowest (224²) last
        model, x = build(family)
        rows[family] = {}
        for method in methods:
            cell = run_cell(model, x, method, options(family, method))
            rows[family][method] = cell
            extra = f" cons={cell['conservation']:.1e}" if "conservation" in cell else ""
            print(f"{family:16s} {method:24s} {cell['status']:8s} {cell['seconds']:6.1f}s"
                  f"{extra} {cell['detail'][:160]}", flush=True)
        if args.markdown is not None:  # after every family: a killed run keeps its rows
            args.markdown.write_text(markdown({f: rows[f] for f in families if f in rows},
                                              methods))
    rows = {f: rows[f] for f in families if f in rows}
    table = markdown(rows, methods)
    print(table)
    print(f"total {time.perf_counter() - total:.0f} s")
    if args.markdown is not None:
        args.markdown.write_text(table)


if __name__ == "__main__":
    main()
