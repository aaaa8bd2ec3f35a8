"""Option decorators shared by the commands, and the one convention they keep.

Every `gnntrack` command names its paths the same way (`tests/test_cli_convention.py`
checks it on every command, the training plugins included):

- positional arguments are only what a command is about, and it reads them: DATASET (with
  SEQ in `run DATASET SEQ`, the CTC protocol's form), a result RES_DIR (`validate`,
  `evaluate`, `report`, `movie`, `export`), the ground truth GT_DIR (`evaluate`,
  `export-gt`), a GEFF graph (`import-geff`). Nothing is ever written to a positional path;
- what a command writes is `--out` (extra files beside it: `--edges`, `--features`); the
  training commands that add a part to a model folder write into their `--model`; one that
  keeps data and state between runs (`train-generalist`) keeps them in its `--work`;
- a model folder is `--model`, a folder of frames `--images`, a folder of label masks
  `--masks`.

An old option name is kept, hidden from `--help`, where scripts and users have it
(`--params` of `run`, `train-embedding`, `train-tracker`): it works like the new one, and
giving both is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing output folder (otherwise an existing one is an error).",
)

existing_dir = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=str)


class AliasedOption(click.Option):
    """An option that also answers to old names, which `--help` does not show.

    The old names fill the same parameter; giving an old and the new name together is a
    usage error, not a silent choice of the last one.
    """

    def __init__(self, *args: Any, aliases: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases = list(aliases)

    @property
    def _alias_dest(self) -> str:
        return f"{self.name}:alias"

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        if self.aliases:
            parser.add_option(obj=self, opts=self.aliases, dest=self._alias_dest, nargs=self.nargs)

    def consume_value(self, ctx: click.Context, opts: Any) -> Any:
        if self._alias_dest in opts:
            if self.name in opts:
                raise click.BadOptionUsage(
                    self.opts[0],
                    f"{self.opts[0]} and its old name {'/'.join(self.aliases)} were both "
                    f"given: give {self.opts[0]} once",
                    ctx,
                )
            opts = {**opts, self.name: opts[self._alias_dest]}
        return super().consume_value(ctx, opts)


def out_option(
    help: str,
    *,
    required: bool = True,
    file_okay: bool = False,
    dir_okay: bool = True,
    path_type: type = str,
):
    """--out: what the command writes (parameter `out`); a folder unless `file_okay`."""
    kind = click.Path(file_okay=file_okay, dir_okay=dir_okay, path_type=path_type)
    return click.option("--out", "out", required=required, type=kind, help=help)


def model_option(
    help: str,
    *,
    exists: bool = True,
    aliases: Sequence[str] = (),
    path_type: type = str,
):
    """--model: a model folder (parameter `model_dir`); `exists=False` where a training
    command writes into it. `aliases`: old names, hidden."""
    kind = click.Path(exists=exists, file_okay=False, path_type=path_type)
    return click.option(
        "--model", "model_dir", cls=AliasedOption, aliases=aliases, required=True, type=kind,
        help=help,
    )  # fmt: skip


def images_option(help: str, *, required: bool = True):
    """--images: a folder of frames t000.tif ... (parameter `images_dir`)."""
    return click.option("--images", "images_dir", required=required, type=existing_dir, help=help)


def masks_option(help: str, *, required: bool = True, path_type: type = str):
    """--masks: a folder of label masks (parameter `masks_dir`)."""
    kind = click.Path(exists=True, file_okay=False, path_type=path_type)
    return click.option("--masks", "masks_dir", required=required, type=kind, help=help)


result_out_option = out_option("Result folder to write (CTC RES layout).")

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
