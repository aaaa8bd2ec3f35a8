"""A segmenter trained on a CTC dataset's annotated frames: what `gnntrack train-seg` runs.

Why a module of its own: the command and `gnntrack train-generalist` train the same way, so
the data loading, the train/validation split, the `--init` checks and the record of the data
live here once, not in a click callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inference.errors import CTCError
from inference.models.folder import load_model_folder
from inference.segmentation.segmenter import MODEL_KIND
from training.segmentation.fit_segmenter import SegTrainConfig, train_segmentation
from training.segmentation.samples import load_samples

#: A frame span (start, stop) as `training.cli.tracking_options.frame_span` parses it.
Span = tuple[int, int]
#: The stop of an open span ("0:" is (0, OPEN)).
OPEN = 10**9


def seg_config(
    patch: Sequence[int], *, depth: int = 3, gamma: float = 1.0, **settings: Any
) -> SegTrainConfig:
    """The training settings for a patch shape: 2D or 3D follows from it (z is pooled below
    the first level; tiles and margins of that dimension count)."""
    ndim = len(patch)
    return SegTrainConfig(
        ndim=ndim,
        depth=depth,
        pool_z=(False,) + (True,) * (depth - 1) if ndim == 3 else None,
        patch=tuple(patch),
        tile=(512,) * 2 if ndim == 2 else (64, 256, 256),
        margin=(32,) * 2 if ndim == 2 else (8, 32, 32),
        normalization={"low": 1.0, "high": 99.8, "gamma": gamma},
        **settings,
    )


def sequence_of(path: Path) -> tuple[Path, str]:
    """(dataset folder, sequence name) of a sequence folder, or of a dataset's sequence 01."""
    return (path, "01") if (path / "01").is_dir() else (path.parent, path.name)


def initial_weights(folder: Path, cfg: SegTrainConfig) -> dict:
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


def _span_text(span: Span | None) -> str | None:
    """A span as the START:STOP text it records ("0:32"; an open stop left empty)."""
    if span is None:
        return None
    return f"{span[0]}:{'' if span[1] >= OPEN else span[1]}"


def train_on_dataset(
    dataset: Path,
    cfg: SegTrainConfig,
    out: Path,
    *,
    val_frames: Span,
    train_frames: Span | None = None,
    seq: str = "01",
    extra: Sequence[Path] = (),
    init_dir: Path | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train on `dataset`/`seq` (frames `train_frames`, default all but `val_frames`) plus
    every annotated frame of the `extra` sequences; writes the model folder `out`.

    Returns its config (with the validation scores under `training.validation`).
    """
    val_range = range(*val_frames)
    train_range = range(*train_frames) if train_frames is not None else None
    init_state = initial_weights(init_dir, cfg) if init_dir is not None else None
    everything = load_samples(
        dataset, seq, context_frames=cfg.context_frames, normalization=cfg.normalization
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
    extra_sequences = [sequence_of(Path(p)) for p in extra]
    for other, other_seq in extra_sequences:
        train += load_samples(
            other, other_seq, context_frames=cfg.context_frames, normalization=cfg.normalization
        )
    if train[0].labels.ndim != cfg.ndim:
        raise CTCError(f"--patch is {cfg.ndim}D but the data is {train[0].labels.ndim}D", dataset)
    log(f"training on {len(train)} annotated frames, validating on {len(val)}")
    description = {
        "dataset": Path(dataset).name,
        "sequence": seq,
        "train_frames": _span_text(train_frames),
        "val_frames": _span_text(val_frames),
        "extra": [f"{d.name}/{q}" for d, q in extra_sequences],
    }
    if init_dir is not None:
        description["init"] = Path(init_dir).name
    return train_segmentation(
        train,
        val,
        cfg,
        out,
        data_description=description,
        overwrite=overwrite,
        init_state=init_state,
        log=log,
    )
