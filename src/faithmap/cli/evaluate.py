"""``faithmap evaluate`` (methods × metrics on a dataset) and ``faithmap demo``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..core.batching import DEFAULT_BATCH_SIZE
from ..core.devices import resolve_device
from ..evaluation.demo import DEMO_N
from .common import (
    DEVICES,
    MODEL_HELP,
    check_evaluation,
    fail,
    load,
    note_random_weights,
    scoped_options,
    split,
)


def parse_target(text: str | None):
    """``--target``: ``predicted``, ``label`` or ``METRIC=POLICY,...`` (None: per metric)."""
    if text is None or text in ("predicted", "label"):
        return text
    policy = {}
    for part in split(text) or []:
        metric, sep, value = part.partition("=")
        if not sep or value not in ("predicted", "label"):
            raise click.BadParameter(f"{part!r}: use 'predicted', 'label' or METRIC=predicted|"
                                     "label (comma-separated)", param_hint="--target")
        policy[metric.strip()] = value
    return policy


def run_evaluation(model_spec, weights, data, methods, metrics, n, out, seed, batch_size,
                   device, method_options, metric_options, ray_address=None, ray_workers=None,
                   resume=False, block=16, target=None) -> None:
    """Load the model, run :func:`faithmap.evaluate`, print the table; exit 1 on failures."""
    import torch

    from ..evaluation import evaluate as fm_evaluate

    try:
        if ray_address is not None:
            from ..evaluation.ray_backend import require_ray

            require_ray()
        loaded = load(model_spec, weights)
        model = loaded.model.to(resolve_device(device))
    except Exception as exc:  # noqa: BLE001 - reported to the user as a usage error
        raise click.ClickException(str(exc)) from exc
    check_evaluation(model, loaded, model_spec, data, methods, method_options, metrics, out, seed)
    note_random_weights(loaded, model_spec)
    torch.manual_seed(seed)
    try:
        result = fm_evaluate(model, data, methods, metrics, n=n, out=out, seed=seed,
                             batch_size=batch_size, method_options=method_options,
                             metric_options=metric_options, name=model_spec, device=device,
                             block=block, resume=resume, ray_workers=ray_workers,
                             backend="local" if ray_address is None else "ray",
                             ray_address=None if ray_address in (None, "local") else ray_address,
                             target=target)
    except (ValueError, TypeError, KeyError, OSError) as exc:  # a configuration error
        raise fail(exc) from exc
    click.echo(result.table())
    click.echo(f"report: {Path(out) / 'report.html'}")
    if result.errors:
        click.echo(f"{len(result.errors)} method/metric run(s) failed; see the report", err=True)
        sys.exit(1)


@click.command()
@click.option("--model", "model_spec", required=True, help=MODEL_HELP)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data", required=True,
              help="grid, cluttered, a bundled dataset name, or an image folder "
                   "(comma-separated for several)")
@click.option("--methods", default=None, help="comma-separated (default: all registered)")
@click.option("--metrics", default=None, help="comma-separated (default: the main metrics)")
@click.option("--n", default=200, show_default=True, type=click.IntRange(min=1),
              help="samples per dataset")
@click.option("--out", default="faithmap-eval", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True)
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True,
              type=click.IntRange(min=1), help="rows per forward pass")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--method-option", "method_opts", multiple=True,
              help="METHOD.KEY=VALUE, e.g. integrated_gradients.n_steps=16 (repeatable)")
@click.option("--metric-option", "metric_opts", multiple=True,
              help="METRIC.KEY=VALUE, e.g. deletion.step=8 (repeatable)")
@click.option("--block", default=16, show_default=True, type=click.IntRange(min=1),
              help="samples per block (the unit of work, progress and resume)")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="run blocks on Ray (pip install 'faithmap[ray]'): --ray alone starts a local "
                   "instance, --ray ADDRESS (or auto) joins a cluster")
@click.option("--ray-workers", type=int, default=None,
              help="Ray workers (default: one per GPU, else per CPU of the cluster)")
@click.option("--resume", is_flag=True,
              help="skip samples already finished in OUT/progress (same model, data, options)")
@click.option("--target", "target", default=None,
              help="which class each metric explains: predicted, label, or METRIC=POLICY,... "
                   "(default per metric: the label for grid_pointing_game and the mask "
                   "metrics, the predicted class for the others)")
def evaluate(model_spec, weights, data, methods, metrics, n, out, seed, batch_size, device,
             method_opts, metric_opts, block, ray_address, ray_workers, resume, target) -> None:
    """Score methods × metrics on a dataset; write results.csv/json, figures and report.html."""
    run_evaluation(model_spec, weights, split(data), split(methods), split(metrics), n, out,
                   seed, batch_size, device, scoped_options(method_opts, "--method-option"),
                   scoped_options(metric_opts, "--metric-option"), ray_address, ray_workers,
                   resume, block, parse_target(target))


@click.command()
@click.option("--n", default=DEMO_N, show_default=True, type=click.IntRange(min=1),
              help="samples per benchmark")
@click.option("--out", default="demo-out", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, type=DEVICES,
              help="cpu by default: the recorded demo figures are CPU runs")
def demo(n, out, seed, device) -> None:
    """The embedded default: a zoo model on the grid and cluttered MNIST benchmarks,
    the baselines and the seed papers' post-hoc methods, the main metrics."""
    from ..evaluation.demo import (
        DEMO_DATA,
        DEMO_METHOD_OPTIONS,
        DEMO_METRIC_OPTIONS,
        DEMO_METRICS,
        DEMO_MODEL,
        demo_methods,
    )

    click.echo(f"faithmap demo: {DEMO_MODEL} on {', '.join(DEMO_DATA)} ({n} samples each)")
    run_evaluation(DEMO_MODEL, None, list(DEMO_DATA), demo_methods(), list(DEMO_METRICS), n,
                   out, seed, DEFAULT_BATCH_SIZE, device, DEMO_METHOD_OPTIONS,
                   DEMO_METRIC_OPTIONS)
