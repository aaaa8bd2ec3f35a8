"""`gnntrack train-seg`: train the segmentation U-Net on a CTC dataset."""

from __future__ import annotations

import json
from pathlib import Path

import click

from inference.cli.options import model_option, out_option, overwrite_option
from inference.errors import CTCError
from inference.io.atomic import refuse_to_overwrite
from inference.models.folder import load_model_folder
from inference.segmentation.segmenter import MODEL_KIND
from training.cli.tracking_options import frame_span
from training.segmentation.fit_segmenter import SegTrainConfig, train_segmentation
from training.segmentation.samples import load_samples


def _frame_range(text: str | None) -> range | None:
    span = frame_span(text)
    return range(*span) if span is not None else None


def _sequence_of(path: Path) -> tuple[Path, str]:
    """(dataset folder, sequence name) of a sequence folder, or of a dataset's sequence 01."""
    return (path, "01") if (path / "01").is_dir() else (path.parent, path.name)


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _initial_weights(folder: Path, cfg: SegTrainConfig) -> dict:
    """The weights of model `folder`, refused unless it is the network `cfg` would build."""
    config, state = load_model_folder(folder, MODEL_KIND)
    wanted = {
        "ndim": cfg.ndim,
        "in_channels": cfg.context_frames + 1,
        "base_channels": cfg.base_channels,
        "depth": cfg.depth,
        "pool_z": list(cfg.pool_z) if cfg.pool_z is not None else None,
    }
    arch = dict(config.get("architecture", {}))
    if arch.get("pool_z") is not None:
        arch["pool_z"] = list(arch["pool_z"])
    if arch != wanted:
        raise CTCError(f"--init model is {arch}, this run builds {wanted}", folder)
    theirs = {"low": 1.0, "high": 99.8, "gamma": 1.0, **config.get("normalization", {})}
    ours = {"low": 1.0, "high": 99.8, "gamma": 1.0, **cfg.normalization}
    if theirs != ours:
        raise CTCError(
            f"--init model normalises {theirs}, this run {ours}: pass its --gamma", folder
        )
    scale = float(config.get("inference", {}).get("scale", 1.0))
    if scale != cfg.scale:
        raise CTCError(f"--init model works at --scale {scale}, this run at {cfg.scale}", folder)
    return state


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
    val_looks,
    seed,
    overwrite,
) -> None:
    """Train the segmentation model on DATASET/SEQ (gold `_GT/SEG`, silver `_ST/SEG`).

    Frames in --val-frames are never trained on; they pick the best checkpoint and the
    post-processing thresholds. Runs on the GPU when there is one.
    """
    refuse_to_overwrite(out, overwrite)
    val_range = _frame_range(val_frames)
    train_range = _frame_range(train_frames)
    patch = _ints(patch)
    ndim = len(patch)
    cfg = SegTrainConfig(
        ndim=ndim,
        context_frames=context_frames,
        base_channels=base_channels,
        depth=depth,
        pool_z=(False,) + (True,) * (depth - 1) if ndim == 3 else None,
        patch=patch,
        batch_size=batch_size,
        iterations=iterations,
        minutes=minutes,
        lr=lr,
        seed=seed,
        scale=scale,
        val_every=val_every,
        tile=(512,) * 2 if ndim == 2 else (64, 256, 256),
        margin=(32,) * 2 if ndim == 2 else (8, 32, 32),
        normalization={"low": 1.0, "high": 99.8, "gamma": gamma},
        looks=looks,
        val_looks=val_looks,
    )
    init_state = _initial_weights(init_dir, cfg) if init_dir is not None else None
    everything = load_samples(
        dataset, seq, context_frames=context_frames, normalization=cfg.normalization
    )
    val = [s for s in everything if s.index in val_range]
    train = [
        s
        for s in everything
        if (s.index in train_range if train_range is not None else s.index not in val_range)
    ]
    if not val or not train:
        raise CTCError(
            f"need annotated frames for training and validation, got {len(train)} and {len(val)}",
            dataset,
        )
    extra_sequences = [_sequence_of(Path(p)) for p in extra]
    for other, other_seq in extra_sequences:
        train += load_samples(
            other, other_seq, context_frames=context_frames, normalization=cfg.normalization
        )
    if train[0].labels.ndim != ndim:
        raise CTCError(f"--patch is {ndim}D but the data is {train[0].labels.ndim}D", dataset)
    click.echo(f"training on {len(train)} annotated frames, validating on {len(val)}", err=True)
    description = {
        "dataset": Path(dataset).name,
        "sequence": seq,
        "train_frames": train_frames,
        "val_frames": val_frames,
        "extra": [f"{d.name}/{q}" for d, q in extra_sequences],
    }
    if init_dir is not None:
        description["init"] = Path(init_dir).name
    config = train_segmentation(
        train,
        val,
        cfg,
        out,
        data_description=description,
        overwrite=overwrite,
        init_state=init_state,
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
