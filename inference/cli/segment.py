"""`gnntrack segment`: label masks for every frame of a sequence with a trained model."""

from __future__ import annotations

from dataclasses import fields

import click

from inference.cli.options import images_option, model_option, out_option, overwrite_option
from inference.pipeline import load_segmenter, segment_images
from seg_code.postprocess import PostprocessParams


def _threshold_options(command):
    """One option per post-processing threshold; unset ones keep the model's value."""
    for f in reversed(fields(PostprocessParams)):
        flag = "--" + f.name.replace("_", "-")
        command = click.option(
            flag,
            f.name,
            type=type(f.default),
            default=None,
            help=f"Override the model's {f.name} ({f.type}).",
        )(command)
    return command


@click.command("segment")
@images_option("The sequence's frames (t000.tif ...), e.g. Fluo-N2DH-SIM+/01.")
@model_option("Segmentation model folder, e.g. parameters/Fluo-N2DH-SIM+/seg.")
@out_option("Mask folder to write (mask000.tif ...).")
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    help="Arithmetic of the network (default: the model's, else auto: bfloat16 where the "
    "CPU or GPU runs it natively, ~1.7x faster, same SEG; float32 elsewhere).",
)
@click.option(
    "--flip-average/--no-flip-average",
    default=None,
    help="Average the network over the frame's mirror images (default: the model's; about "
    "4x the network time; no shipped model gains enough to turn it on).",
)
@_threshold_options
@overwrite_option
def segment(
    images_dir: str,
    model_dir: str,
    out: str,
    precision: str | None,
    flip_average: bool | None,
    overwrite: bool,
    **thresholds,
) -> None:
    """Segment every frame of IMAGES (t000.tif ...) into OUT/mask000.tif ...

    Masks are uint16 label images of the input's shape, 0 = background.
    """
    overrides = {k: v for k, v in thresholds.items() if v is not None}
    segmenter = load_segmenter(
        model_dir, thresholds=overrides, precision=precision, flip_average=flip_average
    )
    written = segment_images(images_dir, segmenter, out, overwrite=overwrite)
    click.echo(f"wrote {written.frames} masks to {written.out}")
