"""No command writes over what it reads, or starts work it cannot write out.

Before a command runs, every output it names is checked against every input: an output
that is, contains or lies inside an input (frames, masks, ground truth, a model folder) is
refused with one line, with or without `--overwrite` (`--out DATASET --overwrite` would
otherwise replace the frames by the result). Outputs that cannot be created (a file in the
way, a read-only folder) are refused too, and the output folders are locked
(`inference.io.atomic.output_lock`) so that a second run on the same output refuses at once.

What a command reads and writes is read off its parameters: a `click.Path` that must exist
is an input, one that need not is an output. A command whose inputs are not parameters
themselves (`run` reads DATASET/SEQ and DATASET/SEQ_GT, not all of DATASET) declares them
with `reads`, and outputs with a default with `writes`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from inference.errors import CTCError
from inference.io.atomic import check_writable, output_lock

Input = tuple[str, str]  # (role in words, path)
Output = tuple[str, str, bool]  # (role, path, whether it is a folder)


def reads(declare: Callable[[dict[str, Any]], list[Input]]):
    """Declare a command's inputs: `declare(params)` -> [(role, path)] (replacing the
    default: every `click.Path(exists=True)` parameter)."""

    def decorate(command: click.Command) -> click.Command:
        command.gnntrack_reads = declare  # type: ignore[attr-defined]
        return command

    return decorate


def writes(declare: Callable[[dict[str, Any]], list[Output]]):
    """Declare a command's outputs: `declare(params)` -> [(role, path, is a folder)]
    (replacing the default: every other `click.Path` parameter)."""

    def decorate(command: click.Command) -> click.Command:
        command.gnntrack_writes = declare  # type: ignore[attr-defined]
        return command

    return decorate


def _path_params(command: click.Command, params: dict[str, Any], exists: bool) -> Iterator:
    """(role, path, click.Path) of the path parameters that must (not) exist."""
    for param in command.params:
        kind = param.type
        if not isinstance(kind, click.Path) or bool(kind.exists) != exists:
            continue
        role = param.opts[0] if isinstance(param, click.Option) else param.name.upper()
        value = params.get(param.name)
        for v in value if isinstance(value, list | tuple) else [value]:
            if v is not None:
                yield role, str(v), kind


def inputs_of(command: click.Command, params: dict[str, Any]) -> list[Input]:
    """What `command` reads with `params`."""
    declared = getattr(command, "gnntrack_reads", None)
    if declared is not None:
        return [(role, str(path)) for role, path in declared(params) if path is not None]
    return [(role, path) for role, path, _ in _path_params(command, params, exists=True)]


def outputs_of(command: click.Command, params: dict[str, Any]) -> list[Output]:
    """What `command` writes with `params`."""
    declared = getattr(command, "gnntrack_writes", None)
    if declared is not None:
        return [(r, str(p), folder) for r, p, folder in declared(params) if p is not None]
    return [
        (role, path, not kind.file_okay)
        for role, path, kind in _path_params(command, params, exists=False)
    ]


def refuse_overlap(inputs: list[Input], outputs: list[Output]) -> None:
    """CTCError if an output is, contains or lies inside an input."""
    for _, out, _ in outputs:
        o = Path(os.path.realpath(out))
        for role, path in inputs:
            i = Path(os.path.realpath(path))
            if o == i:
                relation = "is"
            elif i in o.parents:
                relation = "lies inside"
            elif o in i.parents:
                relation = "contains"
            else:
                continue
            raise CTCError(
                f"refused: this output {relation} the input {role} ({path}); a command "
                "never writes over what it reads: choose another output",
                out,
            )


def guarded(command: click.Command) -> click.Command:
    """`command` with its outputs checked (and its output folders locked) before it runs."""
    if getattr(command, "gnntrack_guarded", False) or command.callback is None:
        return command
    callback = command.callback

    @functools.wraps(callback)
    def run(**params: Any) -> Any:
        outputs = outputs_of(command, params)
        refuse_overlap(inputs_of(command, params), outputs)
        for _, out, _ in outputs:
            check_writable(out)
        with ExitStack() as locks:
            for _, out, folder in outputs:
                if folder and Path(out).parent.is_dir():  # else the writer locks it later
                    locks.enter_context(output_lock(out))
            return callback(**params)

    command.callback = run
    command.gnntrack_guarded = True  # type: ignore[attr-defined]
    return command
