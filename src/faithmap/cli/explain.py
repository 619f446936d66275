"""``faithmap explain IMAGE_OR_DIR...``: an overlay PNG and the raw attribution per image."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..core.devices import resolve_device
from .common import DEVICES, MODEL_HELP, load, note_random_weights, parse_options


def collect_files(paths: tuple[str, ...]) -> tuple[list[Path], list[tuple[str, str]]]:
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


def fresh_paths(out: Path, base: str, suffixes: tuple[str, ...], taken: set[Path]) -> list[Path]:
    """Paths ``out/base[-k]<suffix>`` that collide with nothing in ``taken`` (inputs, outputs)."""
    k = 0
    while True:
        name = base if k == 0 else f"{base}-{k}"
        paths = [out / f"{name}{s}" for s in suffixes]
        if not any(p.resolve() in taken for p in paths):
            taken.update(p.resolve() for p in paths)
            return paths
        k += 1


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "model_spec", required=True, help=MODEL_HELP)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="local weights file (state dict); nothing is downloaded")
@click.option("--method", default="saliency", show_default=True,
              help="registry name (see `faithmap methods`), captum:ClassName or zennit:Composite")
@click.option("--target", type=int, default=None, help="class index (default: predicted class)")
@click.option("--out", "out_dir", default="faithmap-out", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--size", type=int, default=None,
              help="shorter side scaled to SIZE, then a centre-cropped square "
                   "(default: the model's input size, else 224)")
@click.option("--images-per-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="images per explainer call")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="rows per forward pass, passed to the method as batch_size "
                   "(default: the method's, 32 for faithmap's methods)")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--option", "-o", "options", multiple=True,
              help="method option KEY=VALUE (repeatable), e.g. -o n_steps=32")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              help="explain the batches on Ray (pip install 'faithmap[ray]'): --ray alone "
                   "starts a local instance, --ray ADDRESS (or auto) joins a cluster")
@click.option("--ray-workers", type=int, default=None,
              help="Ray workers (default: one per GPU, else per CPU of the cluster)")
def explain(inputs, model_spec, weights, method, target, out_dir, size, images_per_batch,
            batch_size, device, options, ray_address, ray_workers) -> None:
    """Explain IMAGE_OR_DIR... : writes an overlay PNG and the raw attribution (.npy) per image.

    Unreadable or non-image files are reported and skipped; the exit status is then 1.
    """
    import torch
    from tqdm import tqdm

    from ..core.batching import chunks
    from ..core.files import atomic_write_bytes, save_npy, save_png
    from ..core.registry import get_explainer
    from ..data.images import read_image
    from ..viz import side_by_side

    try:
        loaded = load(model_spec, weights)
        dev = resolve_device(device)
        model = loaded.model.to(dev)
        method_options = parse_options(options)
        if batch_size is not None:
            method_options = {"batch_size": batch_size, **method_options}
        explainer = get_explainer(model, method, **method_options)
        if ray_address is not None:
            from ..evaluation.ray_backend import require_ray

            require_ray()
    except Exception as exc:  # noqa: BLE001 - reported to the user as a usage error
        raise click.ClickException(str(exc)) from exc
    note_random_weights(loaded, model_spec)
    size = size or loaded.input_size or 224
    files, failures = collect_files(inputs)
    out = Path(out_dir)
    taken = {f.resolve() for f in files}  # never overwrite an input
    records: list[dict[str, Any]] = []
    progress = tqdm(total=len(files), desc=f"{method}", unit="img", file=sys.stderr)

    def batches() -> Iterator[tuple[list[Path], torch.Tensor]]:
        for rows in chunks(len(files), images_per_batch):
            batch_files, images = [], []
            for f in (files[i] for i in rows.tolist()):
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
            png, npy = fresh_paths(out, f"{f.stem}.{method.replace(':', '-')}",
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
    summary = {"model": model_spec, "method": method, "random_weights": loaded.random_weights,
               "explained": records, "failed": [{"image": p, "error": e} for p, e in failures]}
    (summary_path,) = fresh_paths(out, "summary", (".json",), taken)
    atomic_write_bytes(summary_path, json.dumps(summary, indent=2).encode())
    click.echo(f"explained {len(records)} image(s) with {method}; outputs in {out}/")
    if failures:
        click.echo(f"{len(failures)} input(s) failed: " + ", ".join(p for p, _ in failures),
                   err=True)
        sys.exit(1)
