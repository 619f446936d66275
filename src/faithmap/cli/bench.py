"""``faithmap bench``: per-method throughput on one model and device."""

from __future__ import annotations

import json
import sys
import warnings

import click

from ..core.devices import resolve_device
from .common import DEVICES, MODEL_HELP, counting_passes, load, scoped_options, split


def count_passes(model, x, method: str, options: dict) -> tuple[float, float]:
    """Forward and backward passes per sample of one ``method`` call on ``x``, counted by
    hooks on the model (rows through it ÷ samples), not estimated from times."""
    import warnings as _warnings

    from ..core.registry import get_explainer
    from ..evaluation.throughput import bench_options

    opts = bench_options(method, options)
    explainer = get_explainer(model, method, **opts)
    with counting_passes(model) as counts, _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        explainer(x)
    return counts["forward"] / len(x), counts["backward"] / len(x)


def declared_passes(model, x, method: str, options: dict) -> dict:
    """The passes per sample ``method`` declares for ``x`` before it runs
    (``Explainer.cost``, for the predicted class): ``declared_forward_per_sample``,
    ``declared_backward_per_sample``, ``declared_exact`` (False: an upper bound); None
    values where the method declares none."""
    from ..core.registry import get_explainer
    from ..evaluation.throughput import bench_options

    opts = bench_options(method, options)
    cost = get_explainer(model, method, **opts).cost(tuple(x.shape), None)
    return {"declared_forward_per_sample": None if cost is None else cost.forward,
            "declared_backward_per_sample": None if cost is None else cost.backward,
            "declared_exact": None if cost is None else cost.exact}


def declared_text(row: dict) -> str:
    """``F / B`` or ``≤ F / ≤ B`` (an upper bound), ``?`` when not declared."""
    if row.get("declared_forward_per_sample") is None:
        return "?"
    le = "" if row["declared_exact"] else "≤ "
    return f"{le}{row['declared_forward_per_sample']} / {le}{row['declared_backward_per_sample']}"


def image_count(images: int | None, batch: int | None) -> int:
    """``--images``, or the deprecated ``--batch`` (with a warning); 8 when neither."""
    if batch is None:
        return 8 if images is None else images
    if images is not None:
        raise click.UsageError("pass --images only (--batch is its deprecated name)")
    message = "faithmap bench: '--batch' is deprecated, use '--images'"
    warnings.warn(message, DeprecationWarning, stacklevel=2)
    click.echo(f"warning: {message}", err=True)
    return batch


@click.command()
@click.option("--model", "model_spec", default="zoo:mnist_allconv", show_default=True,
              help=MODEL_HELP)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="local weights file (state dict)")
@click.option("--methods", default=None, help="comma-separated (default: all registered)")
@click.option("--size", type=int, default=None, help="input side (default: the model's)")
@click.option("--images", type=click.IntRange(min=1), default=None,
              help="images in the timed batch  [default: 8]")
@click.option("--batch", type=click.IntRange(min=1), default=None, hidden=True,
              help="deprecated name of --images")
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--method-option", "method_opts", multiple=True,
              help="METHOD.KEY=VALUE (repeatable), e.g. integrated_gradients.n_steps=32")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="also write the rows as JSON")
def bench(model_spec, weights, methods, size, images, batch, repeats, device, method_opts,
          out_file) -> None:
    """Per-method throughput: seconds per call, samples/s and the forward and backward passes
    per sample, counted by hooks on the model, beside the passes each method declares before
    it runs ("≤": an upper bound; the time ratio to one plain forward+backward is in the
    --out JSON as cost_in_fwd_bwd)."""
    import torch

    from ..core.registry import available_methods
    from ..evaluation.throughput import device_name, measure

    count = image_count(images, batch)
    try:
        loaded = load(model_spec, weights)
        dev = resolve_device(device)
        model = loaded.model.to(dev)
        side = size or loaded.input_size or 224
        x = torch.rand(count, loaded.channels, side, side,
                       generator=torch.Generator().manual_seed(0)).to(dev)
        names = split(methods) or [m for m in available_methods() if m != "comet"]
        scoped = scoped_options(method_opts, "--method-option")
        rows = measure(model, x, names, scoped, repeats)
        for r in rows:
            if "error" not in r:
                r["forward_per_sample"], r["backward_per_sample"] = count_passes(
                    model, x, r["method"], scoped.get(r["method"], {}))
                r.update(declared_passes(model, x, r["method"], scoped.get(r["method"], {})))
    except click.ClickException:
        raise
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as exc:
        raise click.ClickException(str(exc).strip().splitlines()[0]) from exc
    click.echo(f"# {model_spec}, {side}², batch {count}, {device_name(dev)}, "
               f"torch {torch.__version__}")
    click.echo("| method | s / call | samples/s | forward passes / sample | "
               "backward passes / sample | declared forward / backward |")
    click.echo("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        click.echo(f"| {r['method']} | " + (f"failed: {r['error']} | | | | |" if "error" in r
                   else f"{r['seconds']:.4f} | {r['samples_per_s']:.1f} | "
                   f"{r['forward_per_sample']:g} | {r['backward_per_sample']:g} | "
                   f"{declared_text(r)} |"))
    if out_file:
        from ..core.files import atomic_write_bytes

        atomic_write_bytes(out_file, json.dumps(rows, indent=2).encode())
    if any("error" in r for r in rows):
        sys.exit(1)
