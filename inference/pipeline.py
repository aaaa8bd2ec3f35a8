"""The user-level jobs, one function each: segment a sequence, track masks, run both.

The `gnntrack` commands, the CTC run scripts (through `gnntrack run`), the benchmarks and the
tests all go through these, so a run means the same thing everywhere. Each takes folders (or
what was already opened or loaded from them) and writes one CTC folder atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.ctc_rules import count_divisions
from inference.io import FrameSequence, MaskSequence, Track, open_images, open_masks
from inference.io.edge_file import check_edges_path, write_edges
from inference.models.tracker import Tracker
from inference.segmentation.segmenter import Segmenter, iter_segmentation, segment_sequence
from inference.tracking.scores import EdgeRecorder, edge_table
from inference.tracking.stream import track_sequence

Images = FrameSequence | str | Path
Masks = MaskSequence | Iterable[np.ndarray] | str | Path


@dataclass(frozen=True)
class Written:
    """What a job wrote: the folder, how many frames, and the tracks (none for masks)."""

    out: Path
    frames: int
    tracks: list[Track]

    @property
    def divisions(self) -> int:
        """Division events (parents with two or more children, as the CTC counts them)."""
        return count_divisions(self.tracks)


def load_segmenter(
    model: Segmenter | str | Path,
    *,
    thresholds: dict[str, Any] | None = None,
    precision: str | None = None,
    flip_average: bool | None = None,
) -> Segmenter:
    """A segmenter from its folder (or as given), with the run's overrides applied; None
    leaves the model's own setting. `thresholds` (post-processing) apply to a folder."""
    segmenter = model if isinstance(model, Segmenter) else Segmenter.from_folder(model, thresholds)
    if precision is not None:
        segmenter.precision = precision
    if flip_average is not None:
        segmenter.flip_average = flip_average
    return segmenter


def segment_images(
    images: Images, model: Segmenter | str | Path, out: str | Path, *, overwrite: bool = False
) -> Written:
    """Label masks `mask###.tif` of every frame of `images` in the folder `out`."""
    segmenter = load_segmenter(model)  # first: a bad model is refused before data is read
    images = _images(images)
    return Written(segment_sequence(images, segmenter, out, overwrite=overwrite), len(images), [])


def track_masks(
    images: Images,
    masks: Masks,
    model: Tracker | str | Path,
    out: str | Path,
    *,
    edges_csv: str | Path | None = None,
    features_csv: str | Path | None = None,
    overwrite: bool = False,
    prefetch: int | None = None,
) -> Written:
    """Link the cells of `masks` over the frames of `images` into a CTC result in `out`.

    With `edges_csv`, the GNN's probability of every candidate link is kept in memory
    during the run (`EdgeRecorder` on the tracker's hooks) and written there afterwards;
    with `features_csv`, the cell feature table with each cell's track.
    """
    tracker = model if isinstance(model, Tracker) else Tracker.from_folder(model)  # first:
    images = _images(images)  # a mismatched model is refused before any data is read
    if isinstance(masks, str | Path):
        masks = open_masks(masks)
    recorder = None
    if edges_csv is not None:
        check_edges_path(edges_csv, out, overwrite)
        recorder = EdgeRecorder()
    tracks = track_sequence(
        images,
        masks,
        tracker,
        out,
        overwrite=overwrite,
        features_csv=features_csv,
        prefetch=prefetch,
        observe=recorder and recorder.observe,
        on_scores=recorder and recorder.scored,
    )
    if recorder is not None:
        write_edges(edges_csv, edge_table(recorder.scores, recorder.row_labels, tracks))
    return Written(Path(out), len(images), tracks)


def run_sequence(
    images: Images,
    model: str | Path,
    out: str | Path,
    *,
    edges_csv: str | Path | None = None,
    overwrite: bool = False,
) -> Written:
    """Segment and track `images` with a dataset's model folder (`seg/`, `embedding/`,
    `tracker/`): frames go straight from the segmenter to the tracker, and nothing but the
    result (and `edges_csv`) is written."""
    segmenter = load_segmenter(Path(model) / "seg")
    tracker = Tracker.from_folder(model)
    images = _images(images)
    masks = iter_segmentation(images, segmenter)
    return track_masks(images, masks, tracker, out, edges_csv=edges_csv, overwrite=overwrite)


def _images(images: Images) -> FrameSequence:
    return images if isinstance(images, FrameSequence) else open_images(images)
