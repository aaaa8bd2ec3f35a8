"""Options shared by the training commands (`frame_span` by train-seg too)."""

from __future__ import annotations

from pathlib import Path

import click

from inference.cli.options import masks_option, model_option


def frame_span(text: str | None) -> tuple[int, int] | None:
    """'START:STOP' (either may be empty) as a (start, stop) pair; None for all frames."""
    if text is None:
        return None
    try:
        start, stop = (int(v) if v else None for v in text.split(":"))
    except ValueError:
        raise click.BadParameter(f"expected START:STOP, got {text!r}") from None
    return (start or 0, stop if stop is not None else 10**9)


def data_options(command):
    """DATASET argument plus --seq, --frames, --masks, --model (old name --params, hidden),
    --seed and --extra."""
    for option in reversed(
        [
            click.argument(
                "dataset", type=click.Path(exists=True, file_okay=False, path_type=Path)
            ),
            click.option("--seq", default="01", show_default=True, help="Sequence to train on."),
            click.option(
                "--frames",
                help="Frames START:STOP to learn from (default: all); keep test frames out.",
            ),
            masks_option(
                "Cell masks to use where SEQ_GT/TRA holds only markers (e.g. from "
                "`gnntrack segment`); each cell takes the id of the marker it overlaps.",
                required=False,
                path_type=Path,
            ),
            model_option(
                "The dataset's model folder, e.g. parameters/Fluo-N2DH-SIM+.",
                exists=False,
                aliases=["--params"],
                path_type=Path,
            ),
            click.option(
                "--seed", default=0, show_default=True, help="Random seed (same seed, same model)."
            ),
            click.option(
                "--extra",
                multiple=True,
                type=click.Path(exists=True, file_okay=False),
                help="Another CTC dataset with full TRA masks (e.g. from `gnntrack simulate`): "
                "its 01 adds training data. Repeatable.",
            ),
        ]
    ):
        command = option(command)
    return command


def error_rates_option(text: str, *, allow_empty: bool = False) -> tuple[float, ...]:
    """'0,0.02,0.05' -> (0.0, 0.02, 0.05): segmentation error rates (the cut share of the
    injector's mix, training.mask_errors), each in 0..0.5."""
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected rates like 0,0.02,0.05, got {text!r}") from None
    if (not rates and not allow_empty) or any(not 0 <= r <= 0.5 for r in rates):
        raise click.BadParameter(f"rates must lie in 0..0.5, got {text!r}")
    return rates
