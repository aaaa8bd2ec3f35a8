"""`gnntrack`: one click group; each command lives in its own module.

Commands of `inference` are registered here; commands of other packages (training, the
simulator) join through the `gnntrack.commands` entry-point group, loaded only when asked
for, so `inference` never imports `training` and an inference-only install still works.
"""

from __future__ import annotations

import signal
import sys
import warnings
from contextlib import contextmanager
from importlib import import_module
from importlib.metadata import entry_points

import click

from inference import __version__
from inference.cli.guard import guarded
from inference.errors import CTCError

#: Built-in commands: name -> "module:attribute".
_BUILTIN = {
    "validate": "inference.cli.validate:validate",
    "evaluate": "inference.cli.evaluate:evaluate",
    "export-gt": "inference.cli.export_gt:export_gt",
    "segment": "inference.cli.segment:segment",
    "track": "inference.cli.track:track",
    "run": "inference.cli.run:run",
    "report": "inference.cli.report:report",
    "movie": "inference.cli.movie:movie",
    "export": "inference.cli.export:export",
    "import-geff": "inference.cli.export:import_geff",
}


def _plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group="gnntrack.commands")}


class _Group(click.Group):
    """Loads commands lazily and turns CTCError into one clear line, no traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(_BUILTIN) | set(_plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _BUILTIN:
            module, attr = _BUILTIN[name].split(":")
            return guarded(getattr(import_module(module), attr))
        plugin = _plugins().get(name)
        return guarded(plugin.load()) if plugin is not None else None

    def invoke(self, ctx: click.Context):
        try:
            with _sigterm_as_exit(), _warnings_as_lines():
                return super().invoke(ctx)
        except CTCError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)


class Terminated(SystemExit):
    """SIGTERM (docker stop, a cluster's time limit) as an exception: like Ctrl-C, it
    unwinds every `with` block, so temporary output is removed (exit status 143)."""


@contextmanager
def _sigterm_as_exit():
    def stop(signum, frame):
        # Once: a cluster's scancel and a run script's own trap may both send SIGTERM, and a
        # second one raised inside the clean-up would leave the temporary output behind.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        click.echo("Error: terminated (SIGTERM); unfinished output removed", err=True)
        raise Terminated(128 + signal.SIGTERM)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (an embedding application): leave it alone
        yield
        return
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is stop:  # else terminated: stay deaf to more
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def _warnings_as_lines():
    """Warnings about the input (NaN pixels ...) as one `Warning:` line each, no source."""

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"Warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gnntrack")
def main() -> None:
    """Track cells in Cell Tracking Challenge (CTC) sequences and score the result.

    Every command reads and writes the CTC layout: <Dataset>/01/t000.tif ... as input,
    <Dataset>/01_RES/mask000.tif ... plus res_track.txt as output.
    """
