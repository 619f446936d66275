"""``faithmap bench``: per-method throughput on one model and device."""

from __future__ import annotations

import json
import sys
import warnings

import click

from ..core.devices import resolve_device
from .common import DEVICES, MODEL_HELP, load, scoped_options, split


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
    """Per-method throughput: samples/s and cost in forward+backward passes of the batch."""
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
        rows = measure(model, x, names, scoped_options(method_opts, "--method-option"),
                       repeats)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"# {model_spec}, {side}², batch {count}, {device_name(dev)}, "
               f"torch {torch.__version__}")
    click.echo("| method | s / call | samples/s | × one fwd+bwd |")
    click.echo("|---|---:|---:|---:|")
    for r in rows:
        click.echo(f"| {r['method']} | " + (f"failed: {r['error']} | | |" if "error" in r else
                   f"{r['seconds']:.4f} | {r['samples_per_s']:.1f} | "
                   f"{r['cost_in_fwd_bwd']:.1f} |"))
    if out_file:
        from ..core.files import atomic_write_bytes

        atomic_write_bytes(out_file, json.dumps(rows, indent=2).encode())
    if any("error" in r for r in rows):
        sys.exit(1)
