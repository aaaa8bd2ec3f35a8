"""The training loop of the segmentation U-Net: plain torch, deterministic with a seed.

Model selection and the post-processing thresholds use validation frames that the loop never
trains on; the model folder records the data, settings and validation scores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inference.models.folder import save_model_folder
from inference.progress import progress as show_progress
from inference.segmentation.adapt import median_diameter
from inference.segmentation.segmenter import MODEL_KIND
from seg_code.postprocess import PostprocessParams, labels_from_probabilities
from seg_code.predict import predict_probabilities
from seg_code.resize import resample, scaled_shape
from seg_code.targets import centre_map, class_map
from seg_code.unet import UNet
from training.segmentation.augment import AugmentConfig, augment
from training.segmentation.metrics import marker_counts, match_counts
from training.segmentation.samples import SegSample, with_look_shifts


@dataclass
class SegTrainConfig:
    """Everything that shapes a training run (saved in the model's config.json)."""

    ndim: int = 2
    context_frames: int = 1
    base_channels: int = 16
    depth: int = 3
    pool_z: tuple[bool, ...] | None = None
    patch: tuple[int, ...] = (256, 256)
    batch_size: int = 8
    iterations: int = 2000
    minutes: float | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-5
    edge_width: int = 2
    edge_weight: float = 3.0
    val_every: int = 100
    seed: int = 0
    normalization: dict[str, float] = field(default_factory=lambda: {"low": 1.0, "high": 99.8})
    tile: tuple[int, ...] = (512, 512)
    margin: tuple[int, ...] = (32, 32)
    scale: float = 1.0  # YX resolution the network works at, relative to the frames
    looks: bool = False  # augment with other sequences' looks (dim cells, low signal/noise)
    looks_rate: float = 1.0  # ... with the chances of each look (see augment_look) times this
    val_looks: bool = False  # choose checkpoint and thresholds also on look-shifted val frames


def _progress(step: int, cfg: SegTrainConfig, seconds: float) -> float:
    """Fraction of the run done: by steps, or by time when a time limit comes first."""
    progress = step / cfg.iterations
    if cfg.minutes:
        progress = max(progress, seconds / (60 * cfg.minutes))
    return min(progress, 1.0)


def _learning_rate(progress: float, peak: float) -> float:
    """Short linear warm-up, then cosine decay to 1% of the peak: the schedule follows
    `progress`, so a run cut short by its time limit still ends annealed."""
    if progress < 0.05:
        return peak * max(progress, 0.005) / 0.05
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (progress - 0.05) / 0.95)))


def _seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def _batch(samples, cfg, aug, rng, device) -> tuple[torch.Tensor, ...]:
    images, classes, centres, valids = [], [], [], []
    for _ in range(cfg.batch_size):
        s = samples[int(rng.integers(len(samples)))]
        img, lab, val = augment(s.image, s.labels, s.valid, aug, rng)
        images.append(img)
        classes.append(np.where(val, class_map(lab, cfg.edge_width).astype(np.int64), -100))
        centres.append(centre_map(lab))
        valids.append(val)
    as_t = lambda a: torch.from_numpy(np.stack(a)).to(device)  # noqa: E731
    return as_t(images), as_t(classes), as_t(centres), as_t(valids).float()


def _loss(logits, classes, centres, valid, class_weights) -> torch.Tensor:
    ce = nn.functional.cross_entropy(
        logits[:, :3], classes, weight=class_weights, ignore_index=-100
    )
    bce = nn.functional.binary_cross_entropy_with_logits(logits[:, 3], centres, reduction="none")
    return ce + (bce * valid).sum() / valid.sum().clamp(min=1)


def _score(probs: list[np.ndarray], samples: list[SegSample], params: PostprocessParams) -> dict:
    """SEG and detection scores of `params` on `samples`. Precision counts against the
    tracking markers where every sample has them (every cell, so pieces and debris of cells
    the SEG masks leave out count as false), else against the SEG masks."""
    totals, marked = np.zeros(5), np.zeros(2)
    use_markers = all(s.markers is not None for s in samples)
    for p, s in zip(probs, samples, strict=True):
        labels = labels_from_probabilities(p[1], p[2], p[3], params)
        if use_markers:
            marked += marker_counts(s.markers, labels)
        labels[~s.valid] = 0
        totals += match_counts(s.labels, labels)
    iou, n_gt, matched_gt, n_pred, matched_pred = totals
    if use_markers:
        n_pred, matched_pred = marked
    seg = iou / max(n_gt, 1)
    precision, recall = matched_pred / max(n_pred, 1), matched_gt / max(n_gt, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return {"SEG": seg, "detection_f1": f1, "precision": precision, "recall": recall}


def default_postprocess(samples: list[SegSample]) -> PostprocessParams:
    """Size thresholds from the training cells: a quarter of the 2nd-percentile cell size."""
    areas = np.concatenate([np.bincount(s.labels.ravel())[1:] for s in samples])
    areas = areas[areas > 0]
    small = float(np.percentile(areas, 2)) if areas.size else 100.0
    return PostprocessParams(
        min_cell_size=max(int(small / 4), 5), min_centre_size=max(int(small / 20), 3)
    )


#: Values the threshold search tries for each post-processing parameter.
TUNING_VALUES: dict[str, tuple] = {
    "centre_threshold": (0.3, 0.5, 0.7),
    "edge_threshold": (0.3, 0.5, 0.7),
    "cell_threshold": (0.3, 0.5, 0.7),
    "foreground_threshold": (0.3, 0.5),
    "centre_split": (0.0, 0.03, 0.05, 0.1, 0.2),
    "edge_distance": (1, 3, 5, 7),
    "whole_foreground": (False, True),
}


#: Factors of the starting `min_cell_size` that the threshold search tries.
MIN_CELL_SIZE_FACTORS = (0.5, 1.0, 2.0, 4.0, 8.0)


def tune_postprocess(
    probs, samples, base: PostprocessParams, rounds: int = 3
) -> tuple[PostprocessParams, dict]:
    """Thresholds that maximise SEG + detection F1 on validation frames.

    Coordinate ascent: each parameter in turn takes the value of `TUNING_VALUES` that scores
    best with the others fixed, for up to `rounds` passes or until nothing improves. A full
    grid of these values would take ~2,000 scorings (hours on 1024x1024 frames); this takes
    ~50, and still finds pairs that only help together (a seed split that needs wider cells).
    """

    def total(scores: dict) -> float:
        return scores["SEG"] + scores["detection_f1"]

    best, best_scores = base, _score(probs, samples, base)
    seen = {base}
    # the smallest cell kept, relative to the start: large pieces of cut cells (MSC) go
    # only when the precision counts them (tracking markers; see `_score`)
    sizes = tuple(sorted({max(int(base.min_cell_size * k), 1) for k in MIN_CELL_SIZE_FACTORS}))
    search = {**TUNING_VALUES, "min_cell_size": sizes}
    for _ in range(rounds):
        improved = False
        for name, values in search.items():
            for value in values:
                params = PostprocessParams(**{**best.to_dict(), name: value})
                if params in seen:
                    continue
                seen.add(params)
                scores = _score(probs, samples, params)
                if total(scores) > total(best_scores) + 1e-9:
                    best, best_scores, improved = params, scores, True
        if not improved:
            break
    return best, best_scores


def train_segmentation(
    train: list[SegSample],
    val: list[SegSample],
    cfg: SegTrainConfig,
    out_dir: str | Path,
    *,
    data_description: dict[str, Any],
    overwrite: bool = False,
    log: Callable[[str], None] = print,
    init_state: dict | None = None,
) -> dict[str, Any]:
    """Train, select the best validation checkpoint, tune thresholds, write the model folder.

    `init_state`: weights to start from (e.g. an earlier run's), instead of random ones.
    """
    rng = _seed_everything(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    in_channels = cfg.context_frames + 1
    model = UNet(cfg.ndim, in_channels, cfg.base_channels, cfg.depth, cfg.pool_z)
    if init_state is not None:
        model.load_state_dict(init_state)
    model = model.to(device)
    if cfg.ndim == 2:
        model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    class_weights = torch.tensor([1.0, 1.0, cfg.edge_weight], device=device)
    aug = AugmentConfig(
        patch=tuple(cfg.patch),
        zoom=(0.7 * cfg.scale, 1.4 * cfg.scale),
        gamma=(0.5, 2.0) if cfg.looks else (0.7, 1.5),
        looks=cfg.looks,
        looks_rate=cfg.looks_rate,
    )
    n_plain = len(val)  # the validation frames as they are; look-shifted copies follow
    if cfg.val_looks:
        val = with_look_shifts(val, cfg.seed)
    val_inputs = [resample(s.image, scaled_shape(s.labels.shape, cfg.scale)) for s in val]
    post = default_postprocess(train)
    best: dict[str, Any] = {"score": -1.0}
    start = time.monotonic()
    done = 0
    for step in show_progress(
        range(1, cfg.iterations + 1), cfg.iterations, "train-seg, steps", every_s=60
    ):
        progress = _progress(step, cfg, time.monotonic() - start)
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(progress, cfg.lr)
        model.train()
        x, classes, centres, valid = _batch(train, cfg, aug, rng, device)
        if cfg.ndim == 2:  # NHWC convolutions are much faster on CPUs (oneDNN)
            x = x.contiguous(memory_format=torch.channels_last)
        loss = _loss(model(x), classes, centres, valid, class_weights)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        done = step
        out_of_time = _progress(step, cfg, time.monotonic() - start) >= 1.0 and (
            step < cfg.iterations
        )
        if step % cfg.val_every == 0 or step == cfg.iterations or out_of_time:
            model.eval()
            probs = [
                resample(
                    predict_probabilities(model, x, cfg.tile, cfg.margin, precision="float32"),
                    s.labels.shape,
                )
                for x, s in zip(val_inputs, val, strict=True)
            ]
            scores = _score(probs, val, post)
            log(
                f"step {step}: loss {loss.item():.4f}, validation SEG {scores['SEG']:.3f}, "
                f"F1 {scores['detection_f1']:.3f} ({time.monotonic() - start:.0f} s)"
            )
            score = scores["SEG"] + scores["detection_f1"]
            if score > best["score"]:
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best = {"score": score, "state": state, "step": step, "probs": probs}
        if out_of_time:
            log(f"time limit of {cfg.minutes} min reached at step {step}")
            break
    tuned, val_scores = tune_postprocess(best["probs"], val, post)
    log(
        f"best step {best['step']}; tuned thresholds: validation SEG {val_scores['SEG']:.3f}, "
        f"F1 {val_scores['detection_f1']:.3f}"
    )
    own_masks = [
        labels_from_probabilities(p[1], p[2], p[3], tuned) for p in best["probs"][:n_plain]
    ]
    config = {
        "architecture": {
            "ndim": cfg.ndim,
            "in_channels": in_channels,
            "base_channels": cfg.base_channels,
            "depth": cfg.depth,
            "pool_z": list(cfg.pool_z) if cfg.pool_z else None,
        },
        "context_frames": cfg.context_frames,
        "normalization": cfg.normalization,
        "postprocess": tuned.to_dict(),
        "inference": {
            "tile": list(cfg.tile),
            "margin": list(cfg.margin),
            "batch_size": 1,
            "scale": cfg.scale,
            # what a run compares another sequence's cells with (segmenter.adapt_scale)
            **({"cell_diameter": round(d, 1)} if (d := median_diameter(own_masks)) else {}),
        },
        "training": {
            "data": data_description,
            "settings": asdict(cfg),
            "iterations_done": done,
            "best_step": best["step"],
            "seconds": round(time.monotonic() - start, 1),
            "validation": val_scores,
            "device": str(device),
        },
    }
    save_model_folder(out_dir, MODEL_KIND, config, best["state"], overwrite=overwrite)
    return config
