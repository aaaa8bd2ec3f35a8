"""Every `gnntrack` command names its paths one way (inference/cli/options.py says which).

Walks the commands as `gnntrack --help` lists them (the training plugins included) and reads
the convention off their click objects: outputs are `--out`, never positional; model, image
and mask folders are `--model`, `--images`, `--masks`; an old name still works but is not
shown, and giving it together with the new one is refused.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from inference.cli import main
from inference.cli.guard import outputs_of

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample" / "Sim-N2DH"
PARAMS = REPO / "parameters" / "Fluo-N2DH-SIM+"

#: What a positional argument may be: what the command is about, and reads.
SUBJECTS = {"dataset", "dataset_dir", "seq", "res_dir", "gt_dir", "geff_path"}
#: Path options by kind: each kind has one name. A new path option joins one (or this list).
PATH_OPTIONS = {
    "model_dir": "--model",
    "images_dir": "--images",
    "masks_dir": "--masks",
    "out": "--out",
    "gt_dir": "--gt",
    "init_dir": "--init",
    "edges_csv": "--edges",
    "features_csv": "--features",
    "extra": "--extra",
    "work_dir": "--work",
}
#: Output options besides --out: files written beside it, the model folder a training
#: command adds a part to, or a training command's working folder (data, stage records).
EXTRA_OUTPUTS = {"--edges", "--features", "--model", "--work"}
#: Old names, each hidden where it is kept as an alias: (command, old, new, a value).
ALIASES = [
    ("run", "--params", "--model", PARAMS),
    ("train-embedding", "--params", "--model", PARAMS),
    ("train-tracker", "--params", "--model", PARAMS),
]
OLD_NAMES = {"--params", "--seq-dir", "--model-dir", "--image-dir", "--images-dir", "--mask-dir"}


def _commands() -> dict[str, click.Command]:
    ctx = click.Context(main)
    return {name: main.get_command(ctx, name) for name in main.list_commands(ctx)}


COMMANDS = _commands()


def test_every_command_is_walked_the_training_plugins_included():
    assert {"run", "segment", "track", "simulate", "train-seg", "tune-seg"} <= set(COMMANDS)
    assert {"train-embedding", "train-tracker", "movie", "export", "export-gt"} <= set(COMMANDS)


def _probe_value(param: click.Parameter) -> object:
    """A value for `param` that makes `outputs_of` count it whatever its kind."""
    return ["x"] if param.multiple or param.nargs != 1 else "x"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_positional_arguments_are_only_what_the_command_reads(name):
    for param in COMMANDS[name].params:
        if isinstance(param, click.Argument):
            assert param.name in SUBJECTS, f"{name}: positional {param.name.upper()}"
            if isinstance(param.type, click.Path):
                assert param.type.exists, f"{name}: positional {param.name.upper()} is written"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_outputs_are_out_and_path_options_have_their_one_name(name):
    command = COMMANDS[name]
    values = {p.name: _probe_value(p) for p in command.params}
    outputs = {role for role, _, _ in outputs_of(command, values)}
    if outputs:
        assert "--out" in outputs or outputs <= EXTRA_OUTPUTS, f"{name} writes {outputs}"
        assert outputs <= {"--out"} | EXTRA_OUTPUTS, f"{name} writes {outputs}"
    for param in command.params:
        if isinstance(param, click.Option) and isinstance(param.type, click.Path):
            assert param.name in PATH_OPTIONS, f"{name}: a path option {param.opts} of no kind"
            assert param.opts == [PATH_OPTIONS[param.name]], f"{name}: {param.opts}"
            assert not param.secondary_opts


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_shows_no_old_name(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    shown = {word.strip(",;.()[]") for word in result.output.split()}
    assert not shown & OLD_NAMES, f"{name} --help shows {shown & OLD_NAMES}"


def _parse(name: str, args: list[object]) -> dict:
    """The parameters `gnntrack NAME ARGS` runs with (parsed, checked, not run)."""
    command = COMMANDS[name]
    with command.make_context(name, [str(a) for a in args]) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize(("name", "old", "new", "value"), ALIASES, ids=[a[0] for a in ALIASES])
def test_an_old_name_works_as_the_new_one_and_both_are_refused(name, old, new, value):
    subject = [SAMPLE, "01"] if name == "run" else [SAMPLE]
    assert _parse(name, [*subject, old, value]) == _parse(name, [*subject, new, value])
    with pytest.raises(click.UsageError, match="both"):
        _parse(name, [*subject, new, value, old, value])
    refused = CliRunner().invoke(main, [name, *map(str, subject), new, value, old, value])
    assert refused.exit_code == 2 and "give --model once" in refused.output
