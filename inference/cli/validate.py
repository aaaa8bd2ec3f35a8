"""`gnntrack validate`: check a result folder against every CTC format rule."""

from __future__ import annotations

import click

from inference.cli.options import existing_dir, images_option
from inference.ctc_rules import count_divisions, is_valid, validate_result
from inference.io import list_frames, read_tracks
from inference.io.result import RES_TRACK_FILE


@click.command()
@click.argument("res_dir", type=existing_dir)
@images_option(
    "The input sequence (e.g. Dataset/01): also check frame count and shape against it.",
    required=False,
)
@click.pass_context
def validate(ctx: click.Context, res_dir: str, images_dir: str | None) -> None:
    """Check RES_DIR (mask000.tif ... + res_track.txt) against the CTC rules.

    Prints "valid" with a summary, or every violation with its frame and label; warnings
    (rules the CTC does not enforce) are printed but keep the result valid. Exit status 1
    when invalid.
    """
    violations = validate_result(res_dir, images_dir=images_dir, warnings=True)
    if is_valid(violations):
        tracks = read_tracks(f"{res_dir}/{RES_TRACK_FILE}")
        n_frames = len(list_frames(res_dir, "mask"))
        click.echo(
            f"valid: {n_frames} frames, {len(tracks)} tracks, {count_divisions(tracks)} divisions"
        )
        for violation in violations:
            click.echo(str(violation))
        return
    errors = sum(1 for v in violations if v.severity == "error")
    click.echo(f"invalid: {errors} violation{'s' if errors != 1 else ''}")
    for violation in violations:
        click.echo(str(violation))
    ctx.exit(1)
