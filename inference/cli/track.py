"""`gnntrack track`: link the cells of given label masks into a CTC lineage."""

from __future__ import annotations

import click

from inference.cli.options import (
    edges_option,
    images_option,
    masks_option,
    model_option,
    overwrite_option,
    result_out_option,
)
from inference.pipeline import track_masks


@click.command("track")
@images_option("The sequence's frames (t000.tif ...), e.g. Fluo-N2DH-SIM+/01.")
@masks_option("Label masks of those frames (mask000.tif ..., or a GT TRA/SEG folder).")
@model_option("Model folder with tracker/ and embedding/, e.g. parameters/Fluo-N2DH-SIM+.")
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
    images_dir: str,
    masks_dir: str,
    model_dir: str,
    out: str,
    features_csv: str | None,
    edges_csv: str | None,
    overwrite: bool,
) -> None:
    """Link the cells of MASKS over the frames of IMAGES (t000.tif ...) into tracks.

    Writes OUT/mask000.tif ... (cells relabelled by track) and OUT/res_track.txt, the
    lineage with divisions, as the Cell Tracking Challenge expects.
    """
    written = track_masks(
        images_dir,
        masks_dir,
        model_dir,
        out,
        edges_csv=edges_csv,
        features_csv=features_csv,
        overwrite=overwrite,
    )
    click.echo(
        f"wrote {written.frames} frames, {len(written.tracks)} tracks, "
        f"{written.divisions} divisions to {out}"
    )
