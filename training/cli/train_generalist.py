"""`gnntrack train-generalist`: a generalist model folder by one resumable command."""

from __future__ import annotations

from pathlib import Path

import click

from inference.cli.guard import writes
from inference.cli.options import out_option, overwrite_option
from training.generalist import make_plan, train_generalist


def default_work(dim: str, scale: str) -> Path:
    """The work folder when --work is not given: one per dimension count and scale."""
    return Path("runs") / f"generalist-{dim}d-{scale}"


def _outputs(params: dict) -> list[tuple[str, object, bool]]:
    work = params.get("work_dir")
    if work is None and params.get("dim") and params.get("scale"):
        work = default_work(params["dim"], params["scale"])
    return [("--out", params.get("out"), True), ("--work", work, True)]


@writes(_outputs)
@click.command("train-generalist")
@click.option("--dim", type=click.Choice(["2", "3"]), required=True, help="2D or 3D models.")
@out_option(
    "Model folder to write when every stage is done (seg/, embedding/, tracker/ and the "
    "plan.json that made them), e.g. parameters/general-2d.",
    path_type=Path,
)
@click.option(
    "--work",
    "work_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the simulated training data, the model as it is trained and each "
    "stage's record; a rerun continues there [default: runs/generalist-<dim>d-<scale>].",
)
@click.option(
    "--scale",
    type=click.Choice(["shipped", "small"]),
    default="shipped",
    show_default=True,
    help="shipped: the recipe that made parameters/general-2d and general-3d (about 30 "
    "minutes in 2D, 20 in 3D on two CPU cores); small: tiny sequences and few steps "
    "(seconds), to check the path.",
)
@click.option(
    "--init",
    "init_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Segmentation model to start from: fine-tuned in 2D, taken as it is in 3D "
    "[default: parameters/Fluo-N2DH-SIM+/seg, parameters/Fluo-N3DH-CE-sim/seg].",
)
@click.option(
    "--until",
    metavar="STAGE",
    help="Stop after this stage (a name as the log gives it: simulate-<sequence>, seg, "
    "embedding, tracker); --out is then not written.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    help="Seeds every training; the simulations take the recipe's seeds + 1000 x SEED "
    "(0: the recipe's).",
)
@overwrite_option
def train_generalist_command(
    dim: str,
    out: Path,
    work_dir: Path | None,
    scale: str,
    init_dir: Path | None,
    until: str | None,
    seed: int,
    overwrite: bool,
) -> None:
    """Train a generalist model folder (segmenter, embedding, tracker) on simulated data.

    Simulates the training sequences, trains (or copies) the segmenter, then the embedding
    and the size-unit tracker, each a stage whose output is written whole and recorded in
    --work. A rerun (after a crash, a kill or --until) skips the stages that are done and
    redoes the one that was stopped; a rerun with other options in the same --work is
    refused unless --overwrite (which redoes the stages they change). --overwrite also
    replaces an existing --out.
    """
    work = work_dir if work_dir is not None else default_work(dim, scale)
    plan = make_plan(int(dim), scale, seed, init_dir)
    echo = lambda line: click.echo(line, err=True)  # noqa: E731
    train_generalist(plan, work, out, init=init_dir, overwrite=overwrite, until=until, log=echo)
