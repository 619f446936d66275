"""``faithmap train-comet``: train COMET, a variant, or the black-box detector, and write a
float16 checkpoint with a model card (the shipped weights are made with this command)."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from pathlib import Path

import click


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError as err:
        raise click.BadParameter(f"expected comma-separated ints, got {text!r}") from err
    if not widths or min(widths) < 1:
        raise click.BadParameter(f"widths must be positive ints, got {text!r}")
    return widths


def _card(path: Path, card: dict) -> None:
    from ..core.files import atomic_write_bytes

    data = path.read_bytes()
    card.update({"weights_file": path.name, "weights_dtype": "float16",
                 "weights_bytes": len(data), "weights_sha256": hashlib.sha256(data).hexdigest()})
    atomic_write_bytes(path.with_suffix(".json"),
                       (json.dumps(card, indent=2) + "\n").encode())


@click.command("train-comet")
@click.option("--data", "data", default="cluttered", show_default=True,
              help="'cluttered' (MNIST digits on 56×56 clutter) or a bundled dataset name")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="folder for last.pt, best.pt and NAME.pt/.json (float16 + card)")
@click.option("--variant", default="comet", show_default=True,
              type=click.Choice(["comet", "no_detector", "posthoc", "realx", "blackbox"]))
@click.option("--detector", default=None,
              help="black-box classifier checkpoint (path or shipped name); default "
                   "cluttered_blackbox for --data cluttered")
@click.option("--name", default=None, help="output file stem (default: DATA_VARIANT)")
@click.option("--epochs", default=8, show_default=True)
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), default=None,
              help="continue from a last.pt written by an earlier run")
@click.option("--tau", default=0.1, show_default=True, help="allowed mask area τ")
@click.option("--a", "a", default=4.0, show_default=True, help="detector weight a")
@click.option("--gamma", default=2.0, show_default=True, help="hinge margin γ")
@click.option("--b", "b", default=100.0, show_default=True, help="area weight b")
@click.option("--form", default="bounded", show_default=True,
              type=click.Choice(["bounded", "paper"]))
@click.option("--hinge", default="sample", show_default=True,
              type=click.Choice(["sample", "batch"]),
              help="detector hinge per sample, or on batch means (the authors' code)")
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--warmup-epochs", default=1, show_default=True)
@click.option("--n-train", default=3000, show_default=True)
@click.option("--n-val", default=300, show_default=True)
@click.option("--selector-widths", default="8,16,32", show_default=True)
@click.option("--predictor-widths", default="16,32,64", show_default=True)
@click.option("--realx-eval-epochs", default=3, show_default=True,
              help="REAL-X: epochs of predictor pre-training on random masks (of --epochs)")
@click.option("--realx-lambda", default=0.2, show_default=True, help="REAL-X: area weight λ")
@click.option("--seed", default=0, show_default=True,
              help="training seed (initialisation, shuffles); also the data seed unless "
                   "--data-seed is given")
@click.option("--data-seed", default=None, type=int,
              help="seed of the train/validation split (default: --seed)")
@click.option("--decay-every", default=10, show_default=True,
              help="multiply the learning rate by 0.1 every N epochs after warm-up")
@click.option("--progress/--no-progress", default=True, show_default=True)
def train_comet(data, out_dir, variant, detector, name, epochs, resume, tau, a, gamma, b, form,
                hinge, lr, batch_size, warmup_epochs, n_train, n_val, selector_widths,
                predictor_widths, realx_eval_epochs, realx_lambda, seed, data_seed, decay_every,
                progress) -> None:
    """Train COMET (or a variant / the black box) on DATA and write checkpoints to OUT."""
    import torch

    from ..comet.blackbox import accuracy, train_classifier
    from ..comet.data import splits
    from ..comet.training import train
    from ..zoo import checkpoints as M

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or f"{data}_{variant}"
    data_seed = seed if data_seed is None else data_seed
    try:
        train_data, val_data = splits(data, n_train=n_train, n_val=n_val, seed=data_seed)
    except (ValueError, ImportError, FileNotFoundError) as err:
        raise click.UsageError(str(err)) from err
    card = {"name": name, "variant": variant, "data": data, "epochs": epochs, "seed": seed,
            "data_seed": data_seed,
            "n_train": n_train, "n_val": n_val, "threads": torch.get_num_threads(),
            "torch_version": str(torch.__version__),
            "training_command": "faithmap train-comet " + shlex.join(sys.argv[2:])}
    if variant == "blackbox":
        net, cfg = train_classifier(train_data, val_data, epochs=epochs,
                                    widths=_widths(predictor_widths), batch_size=batch_size,
                                    lr=lr, seed=seed, progress=progress)
        card.update({"val_accuracy": cfg["val_acc"], "history": cfg.pop("history")})
        M.save_classifier(out / f"{name}.pt", net, cfg, half=True, card=card)
        _card(out / f"{name}.pt", card)
        click.echo(f"black box: val accuracy {cfg['val_acc']:.4f} -> {out / name}.pt")
        return
    det = None
    if variant != "no_detector":
        source = detector or ("cluttered_blackbox" if data == "cluttered" else None)
        if source is None:
            raise click.UsageError(f"--variant {variant} needs --detector (train one with "
                                   "--variant blackbox)")
        try:
            det = M.load_classifier(source)
        except (FileNotFoundError, ValueError) as err:
            raise click.UsageError(str(err)) from err
        card["detector"] = str(source)
        card["detector_val_accuracy"] = accuracy(det, *val_data)
    result = train(train_data, val_data, detector=det, epochs=epochs, tau=tau, a=a,
                   gamma=gamma, b=b, form=form, hinge=hinge, variant=variant,
                   selector_widths=_widths(selector_widths),
                   predictor_widths=_widths(predictor_widths), batch_size=batch_size, lr=lr,
                   warmup_epochs=warmup_epochs, realx_eval_epochs=realx_eval_epochs,
                   realx_lambda=realx_lambda, decay_every=decay_every, seed=seed,
                   checkpoint_dir=out, resume=resume, progress=progress, log=click.echo)
    card.update({"best_epoch": result.best_epoch, "val_accuracy": result.best_val_acc,
                 "objective": result.config["objective"], "history": result.history})
    result.model.save(out / f"{name}.pt", half=True, card=card)
    _card(out / f"{name}.pt", card)
    click.echo(f"{variant}: best epoch {result.best_epoch}, val accuracy "
               f"{result.best_val_acc:.4f} -> {out / name}.pt")
