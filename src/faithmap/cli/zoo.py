"""``faithmap zoo list | info NAME | train NAME``."""

from __future__ import annotations

import json

import click


@click.group()
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
