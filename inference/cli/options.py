"""Option decorators shared by several commands."""

from __future__ import annotations

import click

overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing output folder (otherwise an existing one is an error).",
)

existing_dir = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=str)
