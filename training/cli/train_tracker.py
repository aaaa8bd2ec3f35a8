"""`gnntrack train-tracker`: the GNN edge classifier and the solver's costs."""

from __future__ import annotations

import click

from inference.cli.options import overwrite_option
from training.cli.tracking_options import data_options, error_rates_option, frame_span
from training.tracker.fit_tracker import TrackerTrainConfig, train_tracker


@click.command("train-tracker")
@data_options
@click.option("--epochs", default=40, show_default=True, help="Passes over the training graphs.")
@click.option("--minutes", type=float, help="Stop after this many minutes (best kept).")
@click.option("--blocks", default=6, show_default=True, help="Message-passing blocks.")
@click.option("--window", default=8, show_default=True, help="Frames per graph.")
@click.option("--z-scale", type=float, help="3D: voxel depth / voxel width (default 1).")
@click.option(
    "--no-embedding", is_flag=True, help="Hand-made features only (ignore MODEL/embedding)."
)
@click.option(
    "--size-unit",
    is_flag=True,
    help="Lengths in units of the cells' size, measured per frame at run time: for a "
    "generalist trained on many datasets (default: pixels).",
)
@click.option(
    "--errors",
    default="",
    metavar="RATES",
    help="Comma-separated segmentation error rates, e.g. 0.02,0.05: each adds a copy of the "
    "training frames whose GT masks got that mix of errors (cut r, missed 0.6r, merged 0.2r, "
    "spurious 0.2r), labelled by the GT markers (default: none).",
)
@click.option(
    "--unions",
    is_flag=True,
    help="Candidate cells: the solver may take two touching pieces as one cell. With "
    "--errors, the damaged copies are also seen merged and their pieces labelled as the "
    "solver should choose them (training.tracker.candidate_labels).",
)
@overwrite_option
def train_tracker_command(
    dataset, seq, frames, masks_dir, model_dir, seed, epochs, minutes, blocks, window, extra,
    z_scale, no_embedding, overwrite, size_unit=False, errors="", unions=False,
) -> None:  # fmt: skip
    """Train the tracker on DATASET/SEQ with MODEL/embedding; writes MODEL/tracker.

    The last fifth of the frames validates: it picks the checkpoint and the solver's
    division and gap costs. Radii and feature scaling are learned from the data.
    """
    cfg = TrackerTrainConfig(
        dataset=str(dataset),
        seq=seq,
        frames=frame_span(frames),
        masks=str(masks_dir) if masks_dir else None,
        extra=tuple(str(e) for e in extra),
        use_embedding=not no_embedding,
        window=window,
        stride=max(1, window - 2),
        blocks=blocks,
        epochs=epochs,
        minutes=minutes,
        spacing=None,
        seed=seed,
    )
    if z_scale is not None:
        cfg.spacing = (z_scale, 1.0, 1.0)
    cfg.size_unit = size_unit
    cfg.errors = error_rates_option(errors, allow_empty=True)
    cfg.unions = unions
    train_tracker(cfg, model_dir, overwrite=overwrite)
    click.echo(f"wrote {model_dir / 'tracker'}")
