"""`gnntrack movie`: a result drawn over its raw frames, as an animated GIF or an MP4."""

from __future__ import annotations

from pathlib import Path

import click

from inference.cli.options import existing_dir, images_option, movie_options, out_option
from inference.io import open_images, open_masks, read_tracks
from inference.io.atomic import refuse_to_overwrite
from inference.io.result import RES_TRACK_FILE
from inference.report.overlay_movie import MovieOptions, write_movie


@click.command()
@click.argument("res_dir", type=existing_dir)
@images_option("The raw frames of the result (t000.tif ...), e.g. Fluo-N2DH-SIM+/01.")
@out_option(
    "Movie file to write: .gif, or .mp4 (needs imageio-ffmpeg).", file_okay=True, dir_okay=False
)
@movie_options
@click.option("--no-ids", is_flag=True, help="Do not write the track ids.")
@click.option("--overwrite", is_flag=True, help="Replace an existing movie file.")
def movie(
    res_dir: str,
    images_dir: str,
    out: str,
    fps: float,
    tail: int,
    every: int,
    scale: float | None,
    no_ids: bool,
    overwrite: bool,
) -> None:
    """An overlay movie of a result on its raw frames (GIF, or MP4).

    OUT (.gif, or .mp4 with the imageio-ffmpeg package installed) shows the frames of
    IMAGES with each cell of RES_DIR outlined in its track's colour, its id, and a tail
    through its last positions. 3D frames are shown as maximum projections."""
    refuse_to_overwrite(out, overwrite)
    options = MovieOptions(fps=fps, tail=tail, every=every, scale=scale, ids=not no_ids)
    tracks = read_tracks(Path(res_dir) / RES_TRACK_FILE)
    path = write_movie(open_images(images_dir), open_masks(res_dir, "mask"), tracks, out, options)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
