"""`gnntrack report`: an HTML page (plus its pictures) to look at and share a result."""

from __future__ import annotations

import click

from inference.cli.options import (
    existing_dir,
    images_option,
    movie_options,
    out_option,
    overwrite_option,
)
from inference.report import write_report
from inference.report.overlay_movie import MovieOptions
from inference.report.tracking_errors import PLURALS


@click.command()
@click.argument("res_dir", type=existing_dir)
@images_option(
    "The raw frames (e.g. Dataset/01): pictures of each error, and the movie.", required=False
)
@click.option(
    "--gt",
    "gt_dir",
    type=existing_dir,
    help="Ground truth (e.g. Dataset/01_GT): CTC measures and every error, located.",
)
@click.option(
    "--edges",
    "edges_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Edge file of `gnntrack track/run --edges`: the GNN's link probabilities.",
)
@out_option("Report folder to write (index.html and its PNGs).")
@click.option("--movie", is_flag=True, help="Add the overlay movie (movie.gif; needs --images).")
@movie_options
@overwrite_option
def report(
    res_dir: str,
    images_dir: str | None,
    gt_dir: str | None,
    edges_csv: str | None,
    out: str,
    movie: bool,
    fps: float,
    tail: int,
    every: int,
    scale: float | None,
    overwrite: bool,
) -> None:
    """An HTML report of a result: lineage forest, numbers, errors against GT.

    OUT/index.html describes RES_DIR (mask000.tif ... + res_track.txt). The page shows the
    lineage forest (time across, one line per track, divisions as forks), the number of tracks
    and divisions, track lengths and cells per frame. With --gt: the CTC measures and a list of
    the missed divisions, false divisions and identity switches with the frame and position of
    each (also in OUT/errors.csv). The folder opens offline in any browser and can be shared as
    it is.
    """
    options = MovieOptions(fps=fps, tail=tail, every=every, scale=scale)
    done = write_report(
        res_dir,
        out,
        images_dir=images_dir,
        gt_dir=gt_dir,
        edges_csv=edges_csv,
        movie=movie,
        movie_options=options,
        overwrite=overwrite,
    )
    s = done.summary
    found = ""
    if done.errors is not None:
        found = ", " + ", ".join(f"{n} {PLURALS[k]}" for k, n in done.errors.counts.items())
    click.echo(
        f"wrote {done.path}: {s.n_tracks} tracks, {s.n_divisions} divisions over "
        f"{s.n_frames} frames{found} ({done.seconds:.1f} s)"
    )
