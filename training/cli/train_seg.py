"""`gnntrack train-seg`: train the segmentation U-Net on a CTC dataset."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from inference.cli.options import model_option, out_option, overwrite_option
from inference.io.atomic import refuse_to_overwrite
from training.cli.tracking_options import frame_span
from training.segmentation.from_dataset import seg_config, train_on_dataset
from training.segmentation.samples import load_samples

if TYPE_CHECKING:
    from inference.segmentation.segmenter import Segmenter
    from training.segmentation.denoise_calibration import CalibrationFrames


def _frame_range(text: str | None) -> range | None:
    span = frame_span(text)
    return range(*span) if span is not None else None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None


@click.command("train-seg")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--seq", default="01", show_default=True, help="Sequence to train on.")
@click.option(
    "--train-frames", help="Frames START:STOP to train on (default: all but --val-frames)."
)
@click.option("--val-frames", required=True, help="Frames START:STOP for model selection.")
@click.option(
    "--extra",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="More training data: a sequence folder (e.g. ../Fluo-N2DH-SIM+/02) or a dataset "
    "folder, whose sequence 01 is used (e.g. the output of `gnntrack simulate`). Repeatable.",
)
@out_option(
    "Segmentation model folder to write, e.g. parameters/Fluo-N2DH-SIM+/seg.", path_type=Path
)
@click.option("--iterations", default=2000, show_default=True)
@click.option(
    "--minutes",
    type=float,
    help="Time limit; the learning-rate schedule then follows the clock (runs that stop on "
    "time are not bit-reproducible).",
)
@click.option("--batch-size", default=8, show_default=True)
@click.option(
    "--patch", default="256,256", show_default=True, help="Patch size, e.g. 16,128,128 in 3D."
)
@click.option("--context-frames", default=1, show_default=True, help="Previous frames as input.")
@click.option("--base-channels", default=16, show_default=True)
@click.option("--depth", default=3, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--val-every", default=100, show_default=True, help="Steps between validations.")
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    help="Resolution (YX) the network works at; 0.5 suits nuclei over ~30 px across.",
)
@click.option(
    "--gamma",
    default=1.0,
    show_default=True,
    help="Intensity gamma after percentile normalisation; < 1 lifts faint cells.",
)
@click.option(
    "--init",
    "init_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Start from this segmentation model folder's weights (same architecture and "
    "normalisation): trains a CPU model longer in pieces, or fine-tunes on new data.",
)
@click.option(
    "--looks",
    is_flag=True,
    help="Augment with other sequences' looks: some cells dimmed, the signal pressed toward "
    "the background down to ~1 noise sd, gamma 0.5-2 (robustness to unseen sequences).",
)
@click.option(
    "--looks-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="With --looks: the chances of each look (0.4 some cells dimmed, 0.5 the signal "
    "pressed) times this; below 1 more patches keep the sequence's own look.",
)
@click.option(
    "--val-looks",
    is_flag=True,
    help="Choose the checkpoint and thresholds also on look-shifted copies of the "
    "validation frames (signal/noise 2, half the cells dim, gamma 2), not on them alone.",
)
@click.option("--seed", default=0, show_default=True)
@overwrite_option
def train_seg(
    dataset,
    seq,
    train_frames,
    val_frames,
    extra,
    out,
    iterations,
    minutes,
    batch_size,
    patch,
    context_frames,
    base_channels,
    depth,
    lr,
    val_every,
    scale,
    gamma,
    init_dir,
    looks,
    looks_rate,
    val_looks,
    seed,
    overwrite,
) -> None:
    """Train the segmentation model on DATASET/SEQ (gold `_GT/SEG`, silver `_ST/SEG`).

    Frames in --val-frames are never trained on; they pick the best checkpoint and the
    post-processing thresholds. Runs on the GPU when there is one.
    """
    refuse_to_overwrite(out, overwrite)
    cfg = seg_config(
        _ints(patch),
        depth=depth,
        gamma=gamma,
        context_frames=context_frames,
        base_channels=base_channels,
        batch_size=batch_size,
        iterations=iterations,
        minutes=minutes,
        lr=lr,
        seed=seed,
        scale=scale,
        val_every=val_every,
        looks=looks,
        looks_rate=looks_rate,
        val_looks=val_looks,
    )
    config = train_on_dataset(
        dataset,
        cfg,
        out,
        val_frames=frame_span(val_frames),
        train_frames=frame_span(train_frames),
        seq=seq,
        extra=extra,
        init_dir=init_dir,
        overwrite=overwrite,
        log=lambda m: click.echo(m, err=True),
    )
    v = config["training"]["validation"]
    click.echo(f"wrote {out}: validation SEG {v['SEG']:.3f}, detection F1 {v['detection_f1']:.3f}")


@click.command("tune-seg")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@model_option(
    "Segmentation model folder whose config.json is rewritten, e.g. parameters/Fluo-N2DH-SIM+/seg.",
    path_type=Path,
)
@click.option("--seq", default="01", show_default=True)
@click.option("--frames", "frames", required=True, help="Annotated frames START:STOP to tune on.")
def tune_seg(dataset: Path, model_dir: Path, seq: str, frames: str) -> None:
    """Re-choose MODEL's post-processing thresholds on annotated frames of DATASET/SEQ.

    Rewrites MODEL/config.json (the weights stay); use frames the model did not train on.
    """
    from training.segmentation.tune_thresholds import tune_model_thresholds

    config = json.loads((model_dir / "config.json").read_text())
    samples = load_samples(
        dataset,
        seq,
        frames=_frame_range(frames),
        context_frames=int(config["context_frames"]),
        normalization=config.get("normalization"),
    )
    scores = tune_model_thresholds(model_dir, samples)
    click.echo(
        f"tuned on {len(samples)} frames: SEG {scores['SEG']:.3f}, F1 {scores['detection_f1']:.3f}"
    )


def _calibration_inputs(
    dataset: Path, model_dir: Path, seq: str, frames: str
) -> tuple[Segmenter, CalibrationFrames, range]:
    """A calibration's segmenter (exact float32 arithmetic), the annotated frames of
    `frames` with their context, and the span itself."""
    from inference.segmentation.segmenter import Segmenter
    from training.segmentation.denoise_calibration import load_calibration_frames

    segmenter = Segmenter.from_folder(model_dir)
    segmenter.precision = "float32"
    span = _frame_range(frames)
    data = load_calibration_frames(dataset, seq, span, segmenter.context_frames)
    return segmenter, data, span


def _calibration_arguments(command: Callable[..., None]) -> Callable[..., None]:
    """DATASET, --model (the folder whose config.json gets the rule) and --seq, as every
    calibration command takes them."""
    command = click.option("--seq", default="01", show_default=True)(command)
    command = model_option(
        "Segmentation model folder whose config.json gets the rule (e.g. parameters/X/seg).",
        path_type=Path,
    )(command)
    dataset = click.Path(exists=True, file_okay=False, path_type=Path)
    return click.argument("dataset", type=dataset)(command)


@click.command("calibrate-denoise")
@_calibration_arguments
@click.option(
    "--frames", "frames", required=True, help="SEG-annotated frames START:STOP to measure on."
)
@click.option("--seed", default=0, show_default=True, help="Seed of the added noise.")
def calibrate_denoise_command(
    dataset: Path, model_dir: Path, seq: str, frames: str, seed: int
) -> None:
    """Measure how much MODEL gains from smoothing on noisier copies of frames of DATASET/SEQ.

    The frames' signal is pressed toward the background (1.5 to 6 times lower, at the same
    noise) and segmented after Gaussian smoothing of several widths; the best width per
    level is written to MODEL/config.json as its `denoise` rule, which a run applies from
    the signal/noise it measures on its sequence. Use frames the model did not train on.
    """
    from training.segmentation.denoise_calibration import calibrate_denoise, write_denoise_rule

    segmenter, data, _ = _calibration_inputs(dataset, model_dir, seq, frames)
    rule, records = calibrate_denoise(
        segmenter, data, seed=seed, log=lambda m: click.echo(m, err=True)
    )
    write_denoise_rule(model_dir, rule, records, data.frames)
    steps = ", ".join(f"{r:.2g}x: {s:g}" for r, s in zip(rule.ratios, rule.sigmas, strict=True))
    click.echo(
        f"wrote {model_dir / 'config.json'}: signal/noise {rule.snr:.1f}; sigma by ratio {steps}"
    )


@click.command("calibrate-contrast")
@_calibration_arguments
@click.option(
    "--frames",
    "frames",
    required=True,
    help="Frames START:STOP of the model's own kind: every one measures the range, the "
    "SEG-annotated ones try the cap on other looks.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the looks' added noise.")
def calibrate_contrast_command(
    dataset: Path, model_dir: Path, seq: str, frames: str, seed: int
) -> None:
    """Choose MODEL's contrast cap on frames of DATASET/SEQ.

    How wide each frame's percentile range is, in units of its typical cell's level above
    the background, is measured on every frame of FRAMES; the widest, times a margin, is
    the candidate cap. It is kept (MODEL/config.json's `contrast` section, which a run
    applies from the typical cell it measures) only if, on the annotated frames shifted to
    other looks, it costs no look and gains on one. Use frames the model did not train on.
    """
    from inference.io import open_images
    from training.segmentation.contrast_calibration import (
        calibrate_contrast,
        write_contrast_rule,
    )

    segmenter, data, span = _calibration_inputs(dataset, model_dir, seq, frames)
    images = open_images(dataset / seq)
    own = [images.read(t) for t in span if t < len(images)]
    rule, record = calibrate_contrast(
        segmenter, data, own, seed=seed, log=lambda m: click.echo(m, err=True)
    )
    write_contrast_rule(model_dir, rule, record)
    said = (
        f"range capped at {rule.range_per_cell:g} x the typical cell"
        if rule.active
        else f"no cap (the candidate {record['candidate']:g} x the typical cell was not kept)"
    )
    click.echo(f"wrote {model_dir / 'config.json'}: {said}")
