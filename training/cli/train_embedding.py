"""`gnntrack train-embedding`: metric learning of the cell appearance embedding."""

from __future__ import annotations

import click

from inference.cli.options import overwrite_option
from training.cli.tracking_options import data_options, frame_span
from training.embedding.fit_embedding import EmbeddingTrainConfig, train_embedding


@click.command("train-embedding")
@data_options
@click.option("--iterations", default=2000, show_default=True, help="Training batches.")
@click.option("--minutes", type=float, help="Stop after this many minutes (best kept).")
@click.option("--dim", default=64, show_default=True, help="Embedding length.")
@click.option("--crop-size", default=32, show_default=True, help="Crop side in pixels.")
@click.option("--lr", default=1e-3, show_default=True)
@overwrite_option
def train_embedding_command(
    dataset,
    seq,
    frames,
    masks_dir,
    model_dir,
    seed,
    extra,
    iterations,
    minutes,
    dim,
    crop_size,
    lr,
    overwrite,
) -> None:
    """Train the appearance embedding on the tracked cells of DATASET/SEQ.

    Writes MODEL/embedding. A fifth of the tracks is held out to pick the checkpoint that
    best recognises a cell in the next frame. Retraining it means retraining the tracker.
    """
    cfg = EmbeddingTrainConfig(
        dataset=str(dataset),
        seq=seq,
        frames=frame_span(frames),
        masks=str(masks_dir) if masks_dir else None,
        extra=tuple(str(e) for e in extra),
        iterations=iterations,
        minutes=minutes,
        dim=dim,
        crop_size=crop_size,
        lr_trunk=lr,
        lr_head=lr,
        seed=seed,
    )
    train_embedding(cfg, model_dir / "embedding", overwrite=overwrite)
    click.echo(f"wrote {model_dir / 'embedding'}")
