"""The ``faithmap`` command group; each command lives in its own module of this package."""

from __future__ import annotations

import click

from .bench import bench
from .comet import train_comet
from .evaluate import demo, evaluate
from .explain import explain
from .zoo import zoo


@click.group()
@click.version_option(package_name="faithmap")
def main() -> None:
    """faithmap: faithful, robust feature attribution for image classifiers."""


@main.command()
def methods() -> None:
    """List the registered attribution methods."""
    from ..core.registry import available_methods

    for name in available_methods():
        click.echo(name)


for command in (explain, evaluate, demo, bench, zoo, train_comet):
    main.add_command(command)
