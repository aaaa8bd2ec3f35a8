"""Option decorators shared by several commands."""

from __future__ import annotations

import click

overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing output folder (otherwise an existing one is an error).",
)

existing_dir = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=str)

result_out_option = click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Result folder to write (CTC RES layout).",
)

edges_option = click.option(
    "--edges",
    "edges_csv",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also write the GNN's probability of every candidate link to this CSV (outside the "
    "result folder; read by `gnntrack report` and `gnntrack export`).",
)


def movie_options(command):
    """--fps, --tail, --every, --scale: how an overlay movie looks."""
    decorators = [
        click.option("--fps", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
                     help="Movie frames per second."),
        click.option("--tail", type=click.IntRange(min=0), default=8, show_default=True,
                     help="Frames of past positions drawn behind each cell."),
        click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Use every N-th frame (shorter, smaller movies)."),
        click.option("--scale", type=click.FloatRange(min=0.05, max=8), default=None,
                     help="Zoom factor [default: 1, or less so the longest side is 768 px]."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        command = decorator(command)
    return command
