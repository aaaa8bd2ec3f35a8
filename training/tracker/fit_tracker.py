"""Training the GNN edge classifier, then choosing the solver's costs; saved as a model folder.

The training frames are split in time: the last `val_fraction` validate. Training graphs are
windows of `window` frames with stride 1 (as published); the loss is binary cross-entropy
with the positive class weighted by negatives/positives of each graph (links are rare among
candidates; a graph with one class only is weighted 1) and mother -> daughter edges, rarer
still and what the CTC's BC and CT measures hinge on, weighted `daughter_weight` more. Adam,
lr 1e-3, weight decay 1e-5. The checkpoint kept is the one whose lineage on the validation
frames is best (link F1 + division F1 with the default solver costs; ties: edge accuracy,
then loss), not merely the best edge accuracy, which easy edges dominate. Runs on the GPU
where there is one; deterministic for a seed on the CPU.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

from inference.errors import CTCError
from inference.models.embedding import Embedder
from inference.models.folder import save_model_folder
from inference.models.gnn import EdgeMPNN
from inference.models.tracker import MODEL_KIND, Tracker
from inference.progress import progress
from inference.tracking.graph import EDGE_FEATURES, NODE_FEATURES, GraphSpec
from inference.tracking.solve import SolverParams
from training.device import training_device
from training.mask_errors import error_rates, inject_sequence
from training.provenance import training_record
from training.tracked import tracked_frames
from training.tracker.candidate_labels import candidate_versions
from training.tracker.tune_costs import lineage_quality, tune_solver
from training.tracker.window_graphs import (
    LabelledGraph,
    Sequence,
    TrackedNodes,
    embed_frames,
    fit_statistics,
    labelled_window,
    learn_radii,
    reference_size,
    window_starts,
)


@dataclass
class TrackerTrainConfig:
    """Everything that defines a tracker training run (saved in the model's config)."""

    dataset: str
    seq: str = "01"
    frames: tuple[int, int] | None = None
    masks: str | None = None
    extra: tuple[str, ...] = ()
    use_embedding: bool = True
    val_fraction: float = 0.2
    window: int = 8
    stride: int = 6
    blocks: int = 6
    node_hidden: int = 16
    edge_hidden: int = 64
    max_candidates: int = 8
    spacing: tuple[float, ...] | None = None
    size_unit: bool = False  # lengths in units of the cell size (generalist models)
    # each rate adds a copy of the training frames whose GT masks have segmentation errors
    # injected (training.mask_errors, the benchmarks' mix), labelled by the GT markers
    errors: tuple[float, ...] = ()
    # candidate cells (the solver's `unions`): the damaged copies are also seen merged, with
    # their candidates labelled as the solver should choose them (candidate_labels)
    unions: bool = False
    epochs: int = 40
    patience: int = 10
    daughter_weight: float = 5.0
    minutes: float | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0


def evaluate_edges(model: EdgeMPNN, graphs: list[LabelledGraph]) -> dict[str, float]:
    """Edge accuracy, precision, recall and mean loss at p = 0.5 over labelled graphs."""
    tp = fp = fn = tn = 0
    loss = 0.0
    model.eval()
    with torch.no_grad():
        for item in graphs:
            g, labels = item.graph, item.labels
            if len(labels) == 0:
                continue
            logits = model(g.x, g.emb, g.edge_index, g.edge_attr)[item.known]
            labels = labels[item.known]
            if len(labels) == 0:
                continue
            loss += float(F.binary_cross_entropy_with_logits(logits, labels)) * len(labels)
            pred, true = logits > 0, labels > 0.5
            tp += int((pred & true).sum())
            fp += int((pred & ~true).sum())
            fn += int((~pred & true).sum())
            tn += int((~pred & ~true).sum())
    total = max(tp + fp + fn + tn, 1)
    return {
        "edge_accuracy": (tp + tn) / total,
        "edge_precision": tp / max(tp + fp, 1),
        "edge_recall": tp / max(tp + fn, 1),
        "loss": loss / total,
    }


def _epoch(
    model: EdgeMPNN,
    optimizer: torch.optim.Optimizer,
    graphs: list[LabelledGraph],
    rng: np.random.Generator,
    daughter_weight: float,
) -> None:
    """One pass over the training graphs in random order, one step per graph."""
    model.train()
    for k in rng.permutation(len(graphs)):
        g, labels = graphs[k].graph, graphs[k].labels
        if len(labels) == 0:
            continue
        known = graphs[k].known
        positives = float(labels[known].sum())
        negatives = int(known.sum()) - positives
        pos_weight = negatives / positives if positives and negatives else 1.0
        weight = torch.where(labels > 0.5, pos_weight, 1.0)
        weight = torch.where(graphs[k].daughter, weight * daughter_weight, weight)
        weight = weight * graphs[k].known  # edges of unclaimed detections teach nothing
        logits = model(g.x, g.emb, g.edge_index, g.edge_attr)
        loss = F.binary_cross_entropy_with_logits(logits, labels, weight=weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _prepare(cfg: TrackerTrainConfig, params: Path):
    """Embedding, training sequences, validation frames and lineage, and the graph spec.

    The last `val_fraction` of `cfg.dataset`'s frames validate; the rest and every `extra`
    dataset (all its frames) train.
    """
    embedder = None
    if cfg.use_embedding and (params / "embedding").is_dir():
        embedder = Embedder.from_folder(params / "embedding")
    frames_range = range(*cfg.frames) if cfg.frames else None
    stream, lineage, ndim = tracked_frames(cfg.dataset, cfg.seq, frames_range, cfg.masks)
    if embedder is not None and embedder.ndim != ndim:
        raise CTCError(f"the embedding is {embedder.ndim}D, the data {ndim}D", params / "embedding")
    frames = embed_frames(stream, embedder)
    n_val = max(2, round(cfg.val_fraction * len(frames)))
    if len(frames) - n_val < 2:
        raise CTCError(f"need at least {n_val + 2} frames to train and validate", cfg.dataset)
    train: list[Sequence] = [(frames[:-n_val], lineage)]
    train += damaged_copies(cfg, frames_range, n_val, embedder)
    for other in cfg.extra:
        stream, other_lineage, other_ndim = tracked_frames(other, "01")
        if other_ndim != ndim:
            raise CTCError(f"extra data is {other_ndim}D, the training data {ndim}D", other)
        train.append((embed_frames(stream, embedder), other_lineage))
    spec = GraphSpec(ndim, 1.0, 1.0, cfg.max_candidates, list(cfg.spacing or [1.0] * ndim))
    if cfg.size_unit:
        spec.cell_diameter = reference_size(train, spec)
    spec.radius, spec.radius_gap = learn_radii(train, spec)
    return embedder, train, (frames[-n_val:], lineage), fit_statistics(train, spec)


def damaged_copies(
    cfg: TrackerTrainConfig, frames: range | None, n_val: int, embedder: Embedder | None
) -> list[Sequence]:
    """The training frames (not the validation ones) once per rate of `cfg.errors`, their
    GT masks damaged by the error injector (seeded by `cfg.seed` and the rate's place) and
    labelled by the GT markers as any mask folder is (`training.tracked`): cut pieces carry
    their cell's id, spurious blobs none, a missed cell leaves a gap. The GNN so learns
    what a segmenter's mistakes look like in the graph, as the repairs will see them."""
    out: list[Sequence] = []
    gt = Path(cfg.dataset) / f"{cfg.seq}_GT" / "TRA"
    with tempfile.TemporaryDirectory(prefix="gnntrack-damaged-") as tmp:
        for k, rate in enumerate(cfg.errors):
            damaged = Path(tmp) / f"errors_{k}"
            inject_sequence(gt, damaged, error_rates(rate), seed=cfg.seed + 1000 * (k + 1))
            stream, lineage, _ = tracked_frames(cfg.dataset, cfg.seq, frames, damaged)
            versions = (
                candidate_versions(stream, SolverParams().union_contact) if cfg.unions else [stream]
            )
            for version in versions:
                copy = embed_frames(version, embedder)
                out.append((copy[:-n_val], lineage))
    return out


def train_tracker(
    cfg: TrackerTrainConfig, params: str | Path, *, overwrite: bool = False
) -> Tracker:
    """Train on `cfg.dataset`; writes `params/tracker` (using `params/embedding` if present)."""
    torch.manual_seed(cfg.seed)
    params = Path(params)
    embedder, train, (val, lineage), spec = _prepare(cfg, params)
    n_train = sum(len(frames) for frames, _ in train)
    click.echo(
        f"tracker: {n_train} training and {len(val)} validation frames, radius "
        f"{spec.radius:.1f} / {spec.radius_gap:.1f} px",
        err=True,
    )
    train_graphs = [
        labelled_window(frames[a:b], seq_lineage, spec)
        for frames, seq_lineage in train
        for a, b in window_starts(len(frames), cfg.window, 1)
    ]
    val_graphs = [
        labelled_window(val[a:b], lineage, spec)
        for a, b in window_starts(len(val), cfg.window, cfg.stride)
    ]
    model = EdgeMPNN(
        len(NODE_FEATURES[spec.ndim]),
        len(EDGE_FEATURES[spec.ndim]),
        embedder.dim if embedder else 0,
        cfg.node_hidden,
        cfg.edge_hidden,
        cfg.blocks,
    )
    device = training_device()
    model.to(device)
    train_graphs = [g.to(device) for g in train_graphs]
    val_graphs = [g.to(device) for g in val_graphs]
    tracker = Tracker(spec, model, embedder, SolverParams(), cfg.window, cfg.stride)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    best_state, best_key, best_metrics, stale = None, None, {}, 0
    started = time.monotonic()
    for epoch in progress(
        range(1, cfg.epochs + 1), cfg.epochs, "train-tracker, epochs", every_s=60
    ):
        _epoch(model, optimizer, train_graphs, rng, cfg.daughter_weight)
        metrics = {**evaluate_edges(model, val_graphs), **lineage_quality(val, lineage, tracker)}
        click.echo(f"tracker epoch {epoch}: validation {_brief(metrics)}", err=True)
        key = (
            metrics["link_f1"] + (metrics["division_f1"] or 0.0),
            metrics["edge_accuracy"],
            -metrics["loss"],
        )
        if best_key is None or key > best_key:
            best_key, best_metrics, stale = key, metrics, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if stale >= cfg.patience or (cfg.minutes and time.monotonic() - started > 60 * cfg.minutes):
            break
    model.load_state_dict(best_state or model.state_dict())
    model.cpu().eval()
    tracker.solver, tuned = tune_solver(val, lineage, tracker)
    if cfg.unions:
        tracker.solver = replace(tracker.solver, unions=True)
    config = tracker.config()
    config["training"] = training_record(cfg, epochs_run=epoch, training_frames=n_train)
    config["validation"] = {**best_metrics, **tuned, "frames": _span(val)}
    click.echo(
        f"tracker: solver {tracker.solver}, validation {_brief(config['validation'])}", err=True
    )
    save_model_folder(
        params / "tracker", MODEL_KIND, config, model.state_dict(), overwrite=overwrite
    )
    return Tracker.from_folder(params)


def _brief(metrics: dict) -> str:
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )


def _span(frames: list[TrackedNodes]) -> list[int]:
    return [frames[0].nodes.frame, frames[-1].nodes.frame]
