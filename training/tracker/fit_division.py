"""Fit the division model: which divisions our tracker makes are mitoses, which are a
segmenter's mistakes (a cut cell, a blob beside a cell, two cells parting after a merge).

The examples are the divisions the tracker itself makes (every repair on, the division
model off) on ground-truth masks with segmentation errors injected at several rates and
seeds (`training.mask_errors`), and on the undamaged masks; each is labelled by the CTC
ground truth (a division of the result that matches none of the GT is false,
`inference.report.tracking_errors`). A logistic regression over some of the
`division_features` (`DEFAULT_FEATURES`, chosen on real held-out frames) is fitted with
both classes weighted alike, and the threshold below which a division is undone is chosen
on the same examples so that undoing a true division costs twice what keeping a false one
does: on perfect masks no mitosis may be lost.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from inference.cells.division_features import FEATURES, division_features
from inference.errors import CTCError
from inference.io import open_images, open_masks, read_tracks
from inference.models.division import MODEL_KIND, DivisionModel, DivisionScorer
from inference.models.folder import save_model_folder
from inference.models.tracker import Tracker
from inference.pipeline import segment_images, track_masks
from inference.report.tracking_errors import analyse_errors
from training.cut_sequence import cut_sequence
from training.mask_errors import error_rates, inject_sequence
from training.provenance import training_record

#: Undoing a true division costs this many times what keeping a false one does.
TRUE_DIVISION_COST = 2.0
#: What the shipped models read. Chosen on the real held-out SIM+ frames 52-64 (GT masks
#: damaged at 0-10%): the daughters' border and whether they part transfer; their sizes
#: do not (real SIM+ mothers grow before they divide, the simulator's shrink), and a model
#: on every feature undid 13 of those frames' 22 true divisions (this one: none).
DEFAULT_FEATURES = ("contact", "separation_growth")


@dataclass
class DivisionTrainConfig:
    """What `gnntrack train-division` fits on: `dataset`/`seq` (frames `frames`) and each
    `extra` dataset's 01, all with full TRA masks, damaged at `rates` with `seeds` seeds."""

    dataset: str
    seq: str = "01"
    frames: tuple[int, int] | None = None
    extra: tuple[str, ...] = ()
    rates: tuple[float, ...] = (0.0, 0.02, 0.05, 0.10)
    seeds: int = 2
    seed: int = 0
    features: tuple[str, ...] = DEFAULT_FEATURES
    segmented: bool = False  # also the model's own segmentation of every sequence


def division_examples(result: Path, gt: Path) -> tuple[np.ndarray, np.ndarray]:
    """`FEATURES` and labels (1: a mitosis of the ground truth `gt`, a `<seq>_GT` folder)
    of every division in the CTC result folder `result`."""
    tracks = read_tracks(result / "res_track.txt")
    masks = open_masks(result)
    cache: dict[int, np.ndarray] = {}

    def mask_at(t: int) -> np.ndarray | None:
        if not 0 <= t < len(masks):
            return None
        if t not in cache:
            cache[t] = masks.read(t)
        return cache[t]

    children: dict[int, list] = {}
    for track in tracks:
        if track.parent:
            children.setdefault(track.parent, []).append(track)
    false = {e.res_label for e in analyse_errors(result, gt).of_kind("false division")}
    rows, labels = [], []
    for mother, kids in sorted(children.items()):
        if len(kids) != 2 or kids[0].begin != kids[1].begin:
            continue
        features = division_features(mask_at, kids[0].begin, mother, kids[0].label, kids[1].label)
        if features is not None:
            rows.append(features)
            labels.append(0.0 if mother in false else 1.0)
    x = np.array(rows, np.float32).reshape(-1, len(FEATURES))
    return x, np.array(labels, np.float32)


def damaged_runs(
    data: Path, tracker: Tracker, rates: tuple[float, ...], seeds: int, seed: int, work: Path
) -> Iterator[tuple[str, Path]]:
    """Track data/01's GT masks damaged at each rate and seed; yield (what, result folder)."""
    images = open_images(data / "01")
    gt_masks = data / "01_GT" / "TRA"
    for rate in rates:
        for k in range(seeds if rate > 0 else 1):
            name = f"rate {rate:g} seed {seed + k}"
            masks = gt_masks
            if rate > 0:
                masks = work / f"masks-{rate:g}-{seed + k}"
                inject_sequence(gt_masks, masks, error_rates(rate), seed + k)
            out = work / f"res-{rate:g}-{seed + k}"
            track_masks(images, open_masks(masks), tracker, out)
            yield name, out


def segmented_run(data: Path, tracker: Tracker, segmenter: Path, work: Path) -> Path:
    """Track data/01 on `segmenter`'s masks (a real segmenter's mistakes, and the way its
    daughters look: touching for a frame or two, unlike GT daughters); the result folder."""
    images = open_images(data / "01")
    segment_images(images, segmenter, work / "seg")
    track_masks(images, open_masks(work / "seg"), tracker, work / "res-seg")
    return work / "res-seg"


def collect_examples(
    cfg: DivisionTrainConfig, tracker: Tracker, work: Path, segmenter: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The labelled divisions of every dataset, rate and seed of `cfg` (and, with
    `segmenter`, on its masks of each dataset)."""
    proposer = dataclasses.replace(tracker, division=None)  # the divisions to judge
    sources = [(Path(cfg.dataset), cfg.seq, cfg.frames)]
    sources += [(Path(e), "01", None) for e in cfg.extra]
    xs, ys = [], []
    for k, (dataset, seq, frames) in enumerate(sources):
        if not (dataset / f"{seq}_GT" / "TRA" / "man_track.txt").is_file():
            raise CTCError(f"needs full TRA ground truth ({seq}_GT/TRA/man_track.txt)", dataset)
        start, stop = frames or (0, 10**9)
        data = cut_sequence(dataset, seq, start, stop, work / f"data-{k}")
        folder = work / f"runs-{k}"
        runs = list(damaged_runs(data, proposer, cfg.rates, cfg.seeds, cfg.seed, folder))
        if segmenter is not None:
            runs.append(("segmented", segmented_run(data, proposer, segmenter, work / f"seg-{k}")))
        for name, result in runs:
            x, y = division_examples(result, data / "01_GT")
            click.echo(
                f"{dataset.name} {name}: {int(y.sum())} true, {int((1 - y).sum())} false divisions",
                err=True,
            )
            xs.append(x)
            ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def fit_division_model(
    x: np.ndarray, y: np.ndarray, features: tuple[str, ...] = DEFAULT_FEATURES, seed: int = 0
) -> DivisionModel:
    """A logistic regression on the standardised `features` of `x` (rows of all `FEATURES`;
    both classes weighted alike, a light L2), with the threshold that undoes the most false
    divisions per true one lost (see `TRUE_DIVISION_COST`)."""
    if len(y) == 0 or y.min() == y.max():
        raise CTCError(
            f"needs true and false divisions to learn from, found {int(y.sum())} true and "
            f"{int(len(y) - y.sum())} false (more data, or higher --rates)"
        )
    check_features(features)
    torch.manual_seed(seed)
    chosen = x[:, [FEATURES.index(name) for name in features]]
    mean = chosen.mean(axis=0)
    std = np.maximum(chosen.std(axis=0), 1e-3)
    inputs = torch.from_numpy((chosen - mean) / std)
    target = torch.from_numpy(y)
    weight = torch.where(target > 0, 0.5 / target.mean(), 0.5 / (1 - target.mean()))
    scorer = DivisionScorer(len(features))
    optimiser = torch.optim.LBFGS(scorer.parameters(), lr=0.5, max_iter=200)

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = (
            torch.nn.functional.binary_cross_entropy_with_logits(
                scorer(inputs), target, weight=weight
            )
            + 1e-3 * scorer.linear.weight.pow(2).sum()
        )
        value.backward()
        return value

    optimiser.step(loss)
    scorer.eval()
    model = DivisionModel(scorer, mean.astype(np.float32), std.astype(np.float32), 0.5, features)
    model.threshold = choose_threshold(model.probability(x), y)
    return model


def check_features(features: tuple[str, ...]) -> None:
    """A CTCError unless `features` are some of `FEATURES`."""
    unknown = [name for name in features if name not in FEATURES]
    if unknown or not features:
        raise CTCError(f"unknown division features {unknown}; known: {', '.join(FEATURES)}")


def choose_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The probability below which divisions are undone: false ones undone minus
    `TRUE_DIVISION_COST` per true one undone, at its best; the lowest such (0: none)."""
    best, chosen = 0.0, 0.0
    for threshold in np.unique(p):
        below = p < threshold
        gain = float(((y == 0) & below).sum() - TRUE_DIVISION_COST * ((y == 1) & below).sum())
        if gain > best:
            best, chosen = gain, float(threshold)
    return chosen


def train_division(cfg: DivisionTrainConfig, model_dir: Path, *, overwrite: bool = False) -> Path:
    """Collect examples with `model_dir`'s tracker, fit, write `model_dir/division`."""
    check_features(cfg.features)
    tracker = Tracker.from_folder(model_dir)
    segmenter = model_dir / "seg" if cfg.segmented else None
    if segmenter is not None and not (segmenter / "config.json").is_file():
        raise CTCError("--segmented needs a segmentation model (seg/)", model_dir)
    with tempfile.TemporaryDirectory(prefix="gnntrack-division-") as tmp:
        x, y = collect_examples(cfg, tracker, Path(tmp), segmenter)
    model = fit_division_model(x, y, cfg.features, cfg.seed)
    p = model.probability(x)
    undone = p < model.threshold
    summary = {
        "true_divisions": int(y.sum()),
        "false_divisions": int(len(y) - y.sum()),
        "false_undone": int(((y == 0) & undone).sum()),
        "true_undone": int(((y == 1) & undone).sum()),
    }
    click.echo(
        f"threshold {model.threshold:.3f}: undoes {summary['false_undone']} of "
        f"{summary['false_divisions']} false divisions, {summary['true_undone']} of "
        f"{summary['true_divisions']} true ones (training examples)",
        err=True,
    )
    config = {**model.config(), "training": training_record(cfg), "validation": summary}
    state = dict(model.scorer.state_dict())
    return save_model_folder(model_dir / "division", MODEL_KIND, config, state, overwrite=overwrite)
