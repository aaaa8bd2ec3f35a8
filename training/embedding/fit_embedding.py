"""Metric learning of the appearance ResNet (pytorch-metric-learning), as published.

Multi-similarity loss with cosine similarity and a multi-similarity miner (epsilon 0.1) on
batches of adjacent crops per track; Adam with separate learning rates for the trunk and the
linear head. The checkpoint kept is the one that best re-identifies validation cells in the
next frame. Runs on the GPU where there is one; deterministic for a seed on the CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from inference.cells.crops import crop_geometry
from inference.errors import CTCError
from inference.models.embedding import MODEL_KIND, Embedder, ResNet
from inference.models.folder import save_model_folder
from inference.progress import progress
from training.device import training_device
from training.embedding.crop_batches import (
    CropSet,
    TrackBatches,
    collect_crops,
    next_frame_accuracy,
    split_tracks,
)
from training.provenance import training_record
from training.tracked import tracked_frames


def _metric_learning():
    """pytorch-metric-learning's losses and miners: a training-only dependency (the `train`
    extra), so an inference install (and the image) runs without it."""
    try:
        from pytorch_metric_learning import losses, miners
    except ImportError as exc:
        raise CTCError(
            "train-embedding needs pytorch-metric-learning: install the training extra "
            "(./scripts/setup.sh, or pip install -e '.[train]')"
        ) from exc
    return losses, miners


def require_metric_learning() -> None:
    """CTCError now if the `train` extra is missing: for commands that train an embedding
    only after other long stages (`train-generalist`)."""
    _metric_learning()


@dataclass
class EmbeddingTrainConfig:
    """Everything that defines an embedding training run (saved in the model's config)."""

    dataset: str
    seq: str = "01"
    frames: tuple[int, int] | None = None
    masks: str | None = None
    extra: tuple[str, ...] = ()
    iterations: int = 2000
    minutes: float | None = None
    tracks_per_batch: int = 8
    per_track: int = 4
    val_fraction: float = 0.2
    channels: tuple[int, ...] = (16, 32, 64)
    blocks: tuple[int, ...] = (1, 1, 1)
    dim: int = 64
    crop_size: int = 32
    lr_trunk: float = 1e-3
    lr_head: float = 1e-3
    validate_every: int = 100
    seed: int = 0


def _seed(seed: int) -> None:
    torch.manual_seed(seed)


def load_crops(cfg: EmbeddingTrainConfig) -> tuple[CropSet, dict[str, list[int]], int]:
    """All tracked crops of the training frames (and `extra` datasets), geometry and ndim.

    Track ids and frames of the k-th extra dataset are offset by k * 10**6 so that they
    never meet those of another dataset.
    """
    frames = range(*cfg.frames) if cfg.frames else None
    stream, _, ndim = tracked_frames(cfg.dataset, cfg.seq, frames, cfg.masks)
    sequences = [list(stream)]
    for other in cfg.extra:
        other_stream, _, other_ndim = tracked_frames(other, "01")
        if other_ndim != ndim:
            raise CTCError(f"extra data is {other_ndim}D, the training data {ndim}D", other)
        sequences.append(list(other_stream))
    tables = [f.table for seq in sequences for f in seq]
    geometry = crop_geometry(tables, ndim, cfg.crop_size)
    parts = []
    for k, seq in enumerate(sequences):
        part = collect_crops(seq, tuple(geometry["extent"]), tuple(geometry["size"]))
        offset = k * 10**6
        parts.append(CropSet(part.crops, part.track + offset, part.frame + offset))
    crops = CropSet(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("crops", "track", "frame"))
    )
    return crops, geometry, ndim


def train_embedding(
    cfg: EmbeddingTrainConfig, out: str | Path, *, overwrite: bool = False
) -> Embedder:
    """Train on `cfg.dataset` and save the model folder `out`; returns the best model."""
    if cfg.iterations < 1:
        raise ValueError("iterations must be >= 1")
    _seed(cfg.seed)
    data, geometry, ndim = load_crops(cfg)
    rng = np.random.default_rng(cfg.seed)
    if len(np.unique(data.track)) < 4:
        raise CTCError(
            "metric learning needs at least 4 tracked cells in the frames used", cfg.dataset
        )
    train, val = split_tracks(data, cfg.val_fraction, rng)
    click.echo(
        f"embedding: {len(train)} training crops, {len(val)} validation crops, crop {geometry}",
        err=True,
    )
    try:
        batches = TrackBatches(train, cfg.tracks_per_batch, cfg.per_track, cfg.seed)
    except ValueError as exc:
        raise CTCError(str(exc), cfg.dataset) from exc
    device = training_device()
    model = ResNet(ndim, cfg.channels, cfg.blocks, cfg.dim).to(device)
    head = list(model.head.parameters())
    trunk = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    optimizer = torch.optim.Adam(
        [{"params": trunk, "lr": cfg.lr_trunk}, {"params": head, "lr": cfg.lr_head}]
    )
    losses, miners = _metric_learning()
    loss_fn = losses.MultiSimilarityLoss()
    miner = miners.MultiSimilarityMiner(epsilon=0.1)
    best, best_state, started = -1.0, None, time.monotonic()
    for step in progress(
        range(1, cfg.iterations + 1), cfg.iterations, "train-embedding, steps", every_s=60
    ):
        model.train()
        crops, labels = (t.to(device) for t in batches())
        embeddings = model(crops)
        loss = loss_fn(embeddings, labels, miner(embeddings, labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        out_of_time = cfg.minutes is not None and time.monotonic() - started > 60 * cfg.minutes
        if step % cfg.validate_every == 0 or step == cfg.iterations or out_of_time:
            accuracy = next_frame_accuracy(model, val, data)
            click.echo(
                f"embedding step {step}: loss {loss.item():.4f}, "
                f"next-frame accuracy {accuracy:.4f}",
                err=True,
            )
            if accuracy > best:
                best = accuracy
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if out_of_time:
            break
    model.load_state_dict(best_state or model.state_dict())
    model.cpu().eval()
    embedder = Embedder(model, tuple(geometry["extent"]), tuple(geometry["size"]), "")
    config = embedder.config()
    config["training"] = training_record(cfg, steps=step)
    config["validation"] = {"next_frame_accuracy": best}
    save_model_folder(out, MODEL_KIND, config, model.state_dict(), overwrite=overwrite)
    return Embedder.from_folder(out)
