"""The ``faithmap`` command line."""

from __future__ import annotations

import ast
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from ..core.devices import resolve_device


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        try:
            options[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key.strip()] = value
    return options


def _collect_files(paths: tuple[str, ...]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to explain (directories expanded, sorted) and (path, error) for missing ones."""
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files += sorted(f for f in path.rglob("*")
                            if f.is_file() and not any(part.startswith(".")
                                                       for part in f.relative_to(path).parts))
        elif path.is_file():
            files.append(path)
        else:
            missing.append((p, "no such file or directory"))
    return files, missing


def _fresh_paths(out: Path, base: str, suffixes: tuple[str, ...], taken: set[Path]) -> list[Path]:
    """Paths ``out/base[-k]<suffix>`` that collide with nothing in ``taken`` (inputs, outputs)."""
    k = 0
    while True:
        name = base if k == 0 else f"{base}-{k}"
        paths = [out / f"{name}{s}" for s in suffixes]
        if not any(p.resolve() in taken for p in paths):
            taken.update(p.resolve() for p in paths)
            return paths
        k += 1


@click.group()
@click.version_option(package_name="faithmap")
def main() -> None:
    """faithmap: faithful, robust feature attribution for image classifiers."""


@main.command()
def methods() -> None:
    """List the registered attribution methods."""
    from .. import available_methods

    for name in available_methods():
        click.echo(name)


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "model_spec", required=True,
              help="torchvision:ARCH, zoo:NAME or module.path:factory")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="local weights file (state dict); nothing is downloaded")
@click.option("--method", default="saliency", show_default=True,
              help="registry name (see `faithmap methods`), captum:ClassName or zennit:Composite")
@click.option("--target", type=int, default=None, help="class index (default: predicted class)")
@click.option("--out", "out_dir", default="faithmap-out", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--size", type=int, default=None, help="resize/crop side (default: the model's)")
@click.option("--batch-size", type=int, default=8, show_default=True, help="images per batch")
@click.option("--device", default="auto", show_default=True,
              type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--option", "-o", "options", multiple=True,
              help="method option KEY=VALUE (repeatable), e.g. -o n_steps=32")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              help="explain the batches on Ray (pip install 'faithmap[ray]'): --ray alone "
                   "starts a local instance, --ray ADDRESS (or auto) joins a cluster")
@click.option("--ray-workers", type=int, default=None,
              help="Ray workers (default: one per GPU, else per CPU of the cluster)")
def explain(inputs, model_spec, weights, method, target, out_dir, size, batch_size, device,
            options, ray_address, ray_workers) -> None:
    """Explain IMAGE_OR_DIR... : writes an overlay PNG and the raw attribution (.npy) per image.

    Unreadable or non-image files are reported and skipped; the exit status is then 1.
    """
    import torch
    from tqdm import tqdm

    from .. import get_explainer
    from ..core.files import save_npy, save_png
    from ..data.images import read_image
    from ..viz import side_by_side
    from ..zoo.model_spec import load_model

    try:
        with warnings.catch_warnings():  # the random-weights note is printed below
            warnings.simplefilter("ignore", UserWarning)
            loaded = load_model(model_spec, weights)
        dev = resolve_device(device)
        model = loaded.model.to(dev)
        method_options = _parse_options(options)
        explainer = get_explainer(model, method, **method_options)
        if ray_address is not None:
            from ..evaluation.ray_backend import require_ray

            require_ray()
    except Exception as exc:  # noqa: BLE001 - reported to the user as a usage error
        raise click.ClickException(str(exc)) from exc
    if loaded.random_weights:
        click.echo(f"note: {model_spec} has random weights (pass --weights FILE)", err=True)
    size = size or loaded.input_size or 224
    files, failures = _collect_files(inputs)
    out = Path(out_dir)
    taken = {f.resolve() for f in files}  # never overwrite an input
    records: list[dict[str, Any]] = []
    progress = tqdm(total=len(files), desc=f"{method}", unit="img", file=sys.stderr)

    def batches():
        for start in range(0, len(files), batch_size):
            batch_files, images = [], []
            for f in files[start:start + batch_size]:
                try:
                    images.append(read_image(f, size, loaded.channels))
                    batch_files.append(f)
                except (OSError, ValueError) as exc:
                    failures.append((str(f), str(exc)))
                    click.echo(f"skipped {f}: {exc}", err=True)
                    progress.update(1)
            if images:
                yield batch_files, torch.stack(images)

    def explained_here():
        for batch_files, x in batches():
            try:
                attr = explainer(x.to(dev), target)
                with torch.no_grad():
                    probs = model(x.to(dev)).softmax(dim=1)
                yield (batch_files, x), (attr.cpu(), probs.cpu(),
                                         explainer.metadata.get("target"))
            except Exception as exc:  # noqa: BLE001 - one failing batch must not stop the rest
                yield (batch_files, x), exc

    if ray_address is None:
        results = explained_here()
    else:
        from .ray_explain import explain_on_ray

        results = explain_on_ray(
            model, method, method_options, (((b, x), x) for b, x in batches()), target,
            device, None if ray_address == "local" else ray_address, ray_workers)
    for (batch_files, x), outcome in results:
        if isinstance(outcome, Exception):
            failures += [(str(f), f"{type(outcome).__name__}: {outcome}") for f in batch_files]
            click.echo(f"failed on {len(batch_files)} image(s): {outcome}", err=True)
            progress.update(len(batch_files))
            continue
        attr, probs, targets = outcome
        targets = targets or [None] * len(batch_files)
        for i, f in enumerate(batch_files):
            png, npy = _fresh_paths(out, f"{f.stem}.{method.replace(':', '-')}",
                                    (".png", ".npy"), taken)
            save_png(png, side_by_side(x[i], attr[i]))
            save_npy(npy, attr[i].float())
            predicted = int(probs[i].argmax())
            records.append({
                "image": str(f), "png": str(png), "npy": str(npy), "target": targets[i],
                "predicted": predicted, "probability": float(probs[i, predicted]),
            })
            progress.update(1)
    progress.close()
    from ..core.files import atomic_write_bytes

    summary = {"model": model_spec, "method": method, "random_weights": loaded.random_weights,
               "explained": records, "failed": [{"image": p, "error": e} for p, e in failures]}
    (summary_path,) = _fresh_paths(out, "summary", (".json",), taken)
    atomic_write_bytes(summary_path, json.dumps(summary, indent=2).encode())
    click.echo(f"explained {len(records)} image(s) with {method}; outputs in {out}/")
    if failures:
        click.echo(f"{len(failures)} input(s) failed: " + ", ".join(p for p, _ in failures),
                   err=True)
        sys.exit(1)


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _scoped_options(pairs: tuple[str, ...], flag: str) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` pairs → {NAME: {KEY: value}}."""
    scoped: dict[str, dict[str, Any]] = {}
    for key, value in _parse_options(pairs).items():
        name, sep, option = key.partition(".")
        if not sep or not option:
            raise click.BadParameter(f"expected NAME.KEY=VALUE, got {key!r}", param_hint=flag)
        scoped.setdefault(name, {})[option] = value
    return scoped


def _run_evaluation(model_spec, weights, data, methods, metrics, n, out, seed, batch_size,
                    device, method_options, metric_options, ray_address=None, ray_workers=None,
                    resume=False, block=16) -> None:
    import torch

    from ..evaluation import evaluate
    from ..zoo.model_spec import load_model

    try:
        if ray_address is not None:
            from ..evaluation.ray_backend import require_ray

            require_ray()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            loaded = load_model(model_spec, weights)
        model = loaded.model.to(resolve_device(device))
    except Exception as exc:  # noqa: BLE001 - reported to the user as a usage error
        raise click.ClickException(str(exc)) from exc
    if loaded.random_weights:
        click.echo(f"note: {model_spec} has random weights (pass --weights FILE)", err=True)
    torch.manual_seed(seed)
    result = evaluate(model, data, methods, metrics, n=n, out=out, seed=seed,
                      batch_size=batch_size, method_options=method_options,
                      metric_options=metric_options, name=model_spec, device=device,
                      block=block, resume=resume, ray_workers=ray_workers,
                      backend="local" if ray_address is None else "ray",
                      ray_address=None if ray_address in (None, "local") else ray_address)
    click.echo(result.table())
    click.echo(f"report: {Path(out) / 'report.html'}")
    if result.errors:
        click.echo(f"{len(result.errors)} method/metric run(s) failed; see the report", err=True)
        sys.exit(1)


@main.command()
@click.option("--model", "model_spec", required=True,
              help="torchvision:ARCH, zoo:NAME or module.path:factory")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data", required=True,
              help="grid, cluttered, a bundled dataset name, or an image folder "
                   "(comma-separated for several)")
@click.option("--methods", default=None, help="comma-separated (default: all registered)")
@click.option("--metrics", default=None, help="comma-separated (default: the main metrics)")
@click.option("--n", default=200, show_default=True, help="samples per dataset")
@click.option("--out", default="faithmap-eval", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True)
@click.option("--batch-size", default=32, show_default=True, help="rows per forward pass")
@click.option("--device", default="auto", show_default=True,
              type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--method-option", "method_opts", multiple=True,
              help="METHOD.KEY=VALUE, e.g. integrated_gradients.n_steps=16 (repeatable)")
@click.option("--metric-option", "metric_opts", multiple=True,
              help="METRIC.KEY=VALUE, e.g. deletion.step=8 (repeatable)")
@click.option("--block", default=16, show_default=True,
              help="samples per block (the unit of work, progress and resume)")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="run blocks on Ray (pip install 'faithmap[ray]'): --ray alone starts a local "
                   "instance, --ray ADDRESS (or auto) joins a cluster")
@click.option("--ray-workers", type=int, default=None,
              help="Ray workers (default: one per GPU, else per CPU of the cluster)")
@click.option("--resume", is_flag=True,
              help="skip samples already finished in OUT/progress (same model, data, options)")
def evaluate(model_spec, weights, data, methods, metrics, n, out, seed, batch_size, device,
             method_opts, metric_opts, block, ray_address, ray_workers, resume) -> None:
    """Score methods × metrics on a dataset; write results.csv/json, figures and report.html."""
    _run_evaluation(model_spec, weights, _split(data), _split(methods), _split(metrics), n, out,
                    seed, batch_size, device, _scoped_options(method_opts, "--method-option"),
                    _scoped_options(metric_opts, "--metric-option"), ray_address, ray_workers,
                    resume, block)


@main.command()
@click.option("--n", default=100, show_default=True, help="samples per benchmark")
@click.option("--out", default="demo-out", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True,
              type=click.Choice(["auto", "cpu", "cuda"]),
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
    _run_evaluation(DEMO_MODEL, None, list(DEMO_DATA), demo_methods(), list(DEMO_METRICS), n,
                    out, seed,
                    32, device, DEMO_METHOD_OPTIONS, DEMO_METRIC_OPTIONS)


@main.command()
@click.option("--model", "model_spec", default="zoo:mnist_allconv", show_default=True,
              help="torchvision:ARCH, zoo:NAME or module.path:factory")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="local weights file (state dict)")
@click.option("--methods", default=None, help="comma-separated (default: all registered)")
@click.option("--size", type=int, default=None, help="input side (default: the model's)")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--device", default="auto", show_default=True,
              type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--method-option", "method_opts", multiple=True,
              help="METHOD.KEY=VALUE (repeatable), e.g. integrated_gradients.n_steps=32")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="also write the rows as JSON")
def bench(model_spec, weights, methods, size, batch, repeats, device, method_opts,
          out_file) -> None:
    """Per-method throughput: samples/s and cost in forward+backward passes of the batch."""
    import torch

    from .. import available_methods
    from ..evaluation.throughput import device_name, measure
    from ..zoo.model_spec import load_model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            loaded = load_model(model_spec, weights)
        dev = resolve_device(device)
        model = loaded.model.to(dev)
        side = size or loaded.input_size or 224
        x = torch.rand(batch, loaded.channels, side, side,
                       generator=torch.Generator().manual_seed(0)).to(dev)
        names = _split(methods) or [m for m in available_methods() if m != "comet"]
        rows = measure(model, x, names, _scoped_options(method_opts, "--method-option"),
                       repeats)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"# {model_spec}, {side}², batch {batch}, {device_name(dev)}, "
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


@main.group()
def zoo() -> None:
    """The model zoo: small models trained on bundled data, with shipped weights."""


@zoo.command("list")
def zoo_list() -> None:
    """Zoo model names with their recorded test accuracy."""
    from .. import zoo as fm_zoo

    for name in fm_zoo.names():
        card = fm_zoo.info(name)
        click.echo(f"{name:20s} {card.get('test_accuracy', float('nan')):.3f}  "
                   f"{card.get('architecture', '')}")


@zoo.command("info")
@click.argument("name")
def zoo_info(name) -> None:
    """The model card of NAME (JSON)."""
    from .. import zoo as fm_zoo

    try:
        click.echo(json.dumps(fm_zoo.info(name), indent=2))
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from exc


@zoo.command("train")
@click.argument("name")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="where to write the weights and card (default: a folder named after the model)")
@click.option("--seed", default=0, show_default=True)
@click.option("--epochs", default=None, type=int, help="override the recipe's epoch count")
def zoo_train(name, out_dir, seed, epochs) -> None:
    """Retrain NAME deterministically (CPU) and write its weights and model card."""
    from .. import zoo as fm_zoo

    try:
        card = fm_zoo.train(name, out_dir=out_dir or f"zoo-{name}", seed=seed, epochs=epochs,
                            verbose=True)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from exc
    click.echo(json.dumps({k: card.get(k) for k in ("name", "test_accuracy", "train_seconds",
                                                      "weights_file")}, indent=2))


from .comet import train_comet  # noqa: E402

main.add_command(train_comet)

if __name__ == "__main__":  # pragma: no cover
    main()
