"""`gnntrack train-division`: the division model that tells a mitosis from a segmentation
error (undone by the repairs)."""

from __future__ import annotations

from pathlib import Path

import click

from inference.cells.division_features import FEATURES
from inference.cli.options import model_option, overwrite_option
from training.cli.tracking_options import error_rates_option, frame_span
from training.tracker.fit_division import DEFAULT_FEATURES, DivisionTrainConfig, train_division


@click.command("train-division")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--seq", default="01", show_default=True, help="Sequence to learn from.")
@click.option("--frames", help="Frames START:STOP to learn from (default: all).")
@model_option(
    "The model folder whose tracker proposes the divisions (e.g. parameters/Fluo-N2DH-SIM+); "
    "the division model is written into it as division/.",
    exists=True,
    path_type=Path,
)
@click.option(
    "--extra",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Another CTC dataset with full TRA masks (e.g. from `gnntrack simulate`): its 01 "
    "adds examples. Repeatable.",
)
@click.option(
    "--rates",
    default="0,0.02,0.05,0.1",
    show_default=True,
    help="Segmentation error rates injected into the GT masks (cut, then 0.6x missed, 0.2x "
    "merged, 0.2x spurious); 0 keeps the undamaged masks, whose mitoses must survive.",
)
@click.option(
    "--features",
    default=",".join(DEFAULT_FEATURES),
    show_default=True,
    help=f"Which division features the model reads, of: {', '.join(FEATURES)}.",
)
@click.option(
    "--segmented",
    is_flag=True,
    help="Also learn from the divisions made on MODEL/seg's segmentation of each sequence "
    "(how the segmenter's own daughters and mistakes look).",
)
@click.option("--seeds", default=2, show_default=True, help="Damaged copies per rate above 0.")
@click.option("--seed", default=0, show_default=True, help="First seed of the injected errors.")
@overwrite_option
def train_division_command(
    dataset, seq, frames, model_dir, extra, rates, features, segmented, seeds, seed, overwrite
) -> None:
    """Fit MODEL/division on the divisions MODEL's tracker makes on DATASET/SEQ's GT masks,
    undamaged and with injected segmentation errors, each labelled by the GT."""
    cfg = DivisionTrainConfig(
        dataset=str(dataset),
        seq=seq,
        frames=frame_span(frames),
        extra=tuple(str(e) for e in extra),
        rates=error_rates_option(rates),
        seeds=seeds,
        seed=seed,
        features=tuple(name.strip() for name in features.split(",") if name.strip()),
        segmented=segmented,
    )
    train_division(cfg, model_dir, overwrite=overwrite)
    click.echo(f"wrote {model_dir / 'division'}")
