"""`gnntrack run`: segmentation and tracking of one sequence, as a CTC run script calls it."""

from __future__ import annotations

from pathlib import Path

import click

from inference.cli.guard import reads, writes
from inference.cli.options import (
    edges_option,
    existing_dir,
    model_option,
    out_option,
    overwrite_option,
)
from inference.pipeline import run_sequence


@reads(
    lambda p: [
        ("sequence", Path(p["dataset_dir"]) / p["seq"]),
        ("ground truth", Path(p["dataset_dir"]) / f"{p['seq']}_GT"),
        ("silver truth", Path(p["dataset_dir"]) / f"{p['seq']}_ST"),
        ("--model", p["model_dir"]),
    ]
)
@writes(lambda p: [("--out", _out(p), True), ("--edges", p["edges_csv"], False)])
@click.command("run")
@click.argument("dataset_dir", type=existing_dir)
@click.argument("seq")
@model_option(
    "The dataset's model folder (seg/, embedding/, tracker/), e.g. parameters/Fluo-N2DH-SIM+.",
    aliases=["--params"],
)
@out_option("Result folder [default: DATASET_DIR/SEQ_RES].", required=False)
@edges_option
@overwrite_option
def run(
    dataset_dir: str,
    seq: str,
    model_dir: str,
    out: str | None,
    edges_csv: str | None,
    overwrite: bool,
) -> None:
    """Segment and track DATASET_DIR/SEQ (e.g. Fluo-N2DH-SIM+ 01) into DATASET_DIR/SEQ_RES.

    Frames are segmented one at a time and handed straight to the tracker; nothing but the
    result is written.
    """
    out = _out({"dataset_dir": dataset_dir, "seq": seq, "out": out})
    written = run_sequence(
        Path(dataset_dir) / seq, model_dir, out, edges_csv=edges_csv, overwrite=overwrite
    )
    click.echo(f"wrote {written.frames} frames and {len(written.tracks)} tracks to {out}")


def _out(params: dict) -> str:
    """The result folder: --out, or DATASET_DIR/SEQ_RES beside the sequence."""
    return params["out"] or str(Path(params["dataset_dir"]) / f"{params['seq']}_RES")
