"""`gnntrack track`: link the cells of given label masks into a CTC lineage."""

from __future__ import annotations

import click

from inference.cli.options import edges_option, existing_dir, overwrite_option, result_out_option
from inference.pipeline import track_masks


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
    written = track_masks(
        seq_dir,
        mask_dir,
        model_dir,
        out_dir,
        edges_csv=edges_csv,
        features_csv=features_csv,
        overwrite=overwrite,
    )
    click.echo(
        f"wrote {written.frames} frames, {len(written.tracks)} tracks, "
        f"{written.divisions} divisions to {out_dir}"
    )
