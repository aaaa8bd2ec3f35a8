"""`gnntrack track`: link the cells of given label masks into a CTC lineage."""

from __future__ import annotations

import click

from inference.cli.options import edges_option, existing_dir, overwrite_option, result_out_option
from inference.edges import track_with_edges
from inference.io import open_images, open_masks
from inference.tracker import Tracker
from inference.validate import count_divisions


@click.command("track")
@click.argument("seq_dir", type=existing_dir)
@click.option(
    "--masks",
    "mask_dir",
    required=True,
    type=existing_dir,
    help="Label masks of SEQ_DIR's frames (mask000.tif ..., or a GT TRA/SEG folder).",
)
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=existing_dir,
    help="Model folder with tracker/ and embedding/, e.g. parameters/Fluo-N2DH-SIM+.",
)
@result_out_option
@click.option(
    "--features",
    "features_csv",
    type=click.Path(dir_okay=False, path_type=str),
    help="Also write the cell feature table (one row per cell and frame, with its track) here.",
)
@edges_option
@overwrite_option
def track(
    seq_dir: str,
    mask_dir: str,
    model_dir: str,
    out_dir: str,
    features_csv: str | None,
    edges_csv: str | None,
    overwrite: bool,
) -> None:
    """Link the cells of MASKS over the frames of SEQ_DIR (t000.tif ...) into tracks.

    Writes OUT/mask000.tif ... (cells relabelled by track) and OUT/res_track.txt, the
    lineage with divisions, as the Cell Tracking Challenge expects.
    """
    tracker = Tracker.from_folder(model_dir)
    images = open_images(seq_dir)
    masks = open_masks(mask_dir)
    tracks = track_with_edges(
        images, masks, tracker, out_dir, edges_csv, overwrite=overwrite, features_csv=features_csv
    )
    divisions = count_divisions(tracks)
    click.echo(
        f"wrote {len(images)} frames, {len(tracks)} tracks, {divisions} divisions to {out_dir}"
    )
