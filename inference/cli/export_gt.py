"""`gnntrack export-gt`: a dataset's ground-truth tracking written as a CTC result folder."""

from __future__ import annotations

from pathlib import Path

import click

from inference.cli.options import existing_dir, overwrite_option, result_out_option
from inference.io import open_masks, read_tracks, write_result


@click.command("export-gt")
@click.argument("gt_dir", type=existing_dir)
@result_out_option
@overwrite_option
def export_gt(gt_dir: str, out: str, overwrite: bool) -> None:
    """Write GT_DIR/TRA (man_track*.tif + man_track.txt) as a result folder OUT.

    The result of perfect tracking: it must validate and score 1.0 on every tracking
    measure, which makes it the reference check of a scoring set-up, and it turns GT
    masks into linking-only input for trackers.
    """
    tra = Path(gt_dir) / "TRA"
    masks = open_masks(tra, "man_track")
    tracks = read_tracks(tra / "man_track.txt")
    written = write_result(out, masks, tracks, n_frames=len(masks), overwrite=overwrite)
    click.echo(f"wrote {len(masks)} frames and {len(tracks)} tracks to {written}")
