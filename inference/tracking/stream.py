"""Linking, streamed: label masks in, relabelled masks and a lineage out, in bounded memory.

Frames are read one at a time. The GNN scores overlapping windows of `window` frames started
every `stride` frames (an edge scored by several windows gets the mean logit), and as soon as
no later window can contain the edges into a frame, that frame's links are solved, its
labels assigned and its result mask handed on (to `write_result`). At most about
`window + stride` frames are held, whatever the length of the sequence.

With candidate cells (the solver's `unions` and `splits`), each frame with touching pieces
or fused-looking objects also has an alternative version (`inference.tracking.candidates`,
held as a `inference.tracking.merged.MergedFrame`), scored by the GNN in a second pass over
the same windows; the solver's nodes of a frame are then its cells followed by the
alternatives' new cells, and the cells it chose are the frame's nodes for the next pair.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from inference.errors import CTCError
from inference.io import FrameSequence, MaskSequence, Track, write_result
from inference.models.tracker import Tracker
from inference.progress import progress
from inference.tracking.candidates import (
    NO_SPLITS,
    cut_candidates,
    split_candidates,
)
from inference.tracking.graph import FrameNodes
from inference.tracking.lineage import LineageBuilder
from inference.tracking.merged import (
    MergedFrame,
    candidate_groups,
    labels_of_cells,
    merged_nodes,
    merged_version,
    n_nodes,
    node_of,
    result_mask,
)
from inference.tracking.prefetch import background, cores, torch_threads
from inference.tracking.repair import Repairs
from inference.tracking.solve import Links, solve_pair

T = TypeVar("T")


class EdgeScores:
    """Mean logits per frame pair; a pair's candidate edges are the same in every window."""

    def __init__(self) -> None:
        self.edges: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.sums: dict[tuple[int, int], np.ndarray] = {}
        self.counts: dict[tuple[int, int], int] = {}

    def add(self, edges: np.ndarray, logits: np.ndarray) -> None:
        """Add a window's scores: `edges` (E, 4) as `Tracker.score` returns them, `logits` (E,)."""
        keys = edges[:, 0] * 4 + edges[:, 2]
        for key in np.unique(keys):
            sel = keys == key
            pair = (int(key // 4), int(key % 4))
            if pair in self.sums:
                self.sums[pair] += logits[sel]
                self.counts[pair] += 1
            else:
                self.edges[pair] = (edges[sel, 1], edges[sel, 3])
                self.sums[pair] = logits[sel].copy()
                self.counts[pair] = 1

    def links(self, frame: int, gap: int) -> Links:
        """The candidate links from `frame` to `frame + gap` with their mean logits."""
        pair = (frame, gap)
        if pair not in self.sums:
            return Links.empty()
        src, dst = self.edges[pair]
        return Links(src, dst, self.sums[pair] / self.counts[pair])

    def __bool__(self) -> bool:
        return bool(self.sums)

    def drop_before(self, frame: int) -> None:
        """Forget the pairs that start before `frame` (already solved)."""
        for pair in [p for p in self.sums if p[0] < frame]:
            del self.edges[pair], self.sums[pair], self.counts[pair]


def track_stream(
    images: Iterable[np.ndarray],
    masks: Iterable[np.ndarray],
    tracker: Tracker,
    lineage: LineageBuilder,
    observe: Callable[[pd.DataFrame, np.ndarray], None] | None = None,
    *,
    prefetch: int = 0,
    on_scores: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> Iterator[np.ndarray]:
    """Yield the result mask of every frame in order; `lineage` holds the tracks at the end.

    `images` and `masks` must have the same length and shapes (see `check_inputs`).
    `observe`, if given, gets each frame's feature table and its cells' track labels;
    `on_scores` gets the edges and logits of every window the GNN scores.
    With `prefetch` > 0, frames are read and their cells measured and embedded in a
    background thread, at most `prefetch` frames ahead (the results are the same; on two
    or more free cores it runs alongside the GNN and the solver).
    """
    nodes: dict[int, FrameNodes] = {}
    index: dict[int, np.ndarray] = {}
    merged: dict[int, MergedFrame | None] = {}  # per frame: its merged version, if any
    chosen: dict[int, np.ndarray] = {}  # per frame: the solver nodes chosen (cells, unions)
    labels: dict[int, np.ndarray] = {}  # per frame: the track label of each chosen node
    has_next: dict[int, np.ndarray] = {}  # per frame: which chosen nodes have a successor
    scores = EdgeScores()
    merged_scores = EdgeScores()
    start = scored_until = 0
    solved = 0  # frames 0 .. solved-1 have their labels

    def score(first: int, stop: int) -> None:
        edges, logits = tracker.score([nodes[k] for k in range(first, stop)])
        scores.add(edges, logits)
        if on_scores is not None and len(edges):
            on_scores(edges, logits)
        if any(merged[k] is not None for k in range(first, stop)):
            frames = [merged_nodes(nodes[k], merged[k]) for k in range(first, stop)]
            merged_scores.add(*tracker.score(frames))

    def links(frame: int, gap: int) -> Links:
        """Links between the chosen nodes of `frame` and every node of `frame + gap`."""
        found = scores.links(frame, gap)
        target = frame + gap
        if merged_scores and (merged[frame] is not None or merged[target] is not None):
            extra = merged_scores.links(frame, gap)
            src = node_of(nodes[frame], merged[frame])[extra.src]
            dst = node_of(nodes[target], merged[target])[extra.dst]
            keep = (src >= len(nodes[frame])) | (dst >= len(nodes[target]))
            found = Links(
                np.concatenate([found.src, src[keep]]),
                np.concatenate([found.dst, dst[keep]]),
                np.concatenate([found.logit, extra.logit[keep]]),
            )
        if len(chosen[frame]) == len(nodes[frame]) and merged[frame] is None:
            return found  # every node is a cell and chosen: rows as they are
        position = np.full(n_nodes(nodes[frame], merged[frame]), -1, np.int64)
        position[chosen[frame]] = np.arange(len(chosen[frame]))
        keep = position[found.src] >= 0
        return Links(position[found.src[keep]], found.dst[keep], found.logit[keep])

    def solve_up_to(last: int) -> Iterator[np.ndarray]:
        nonlocal solved
        while solved <= last:
            t = solved
            if t == 0:
                chosen[0] = np.arange(len(nodes[0]))
                labels[0] = lineage.start(0, len(nodes[0]))
            else:
                n_prev = len(chosen[t - 1])
                open_rows = np.flatnonzero(~has_next[t - 2]) if t >= 2 else np.zeros(0, int)
                solution = solve_pair(
                    n_prev,
                    n_nodes(nodes[t], merged[t]),
                    links(t - 1, 1),
                    links(t - 2, 2) if t >= 2 else Links.empty(),
                    open_rows,
                    tracker.solver,
                    candidate_groups(merged[t], tracker.solver),
                )
                if solution.present is None:
                    chosen[t] = np.arange(len(nodes[t]))
                else:
                    chosen[t] = np.flatnonzero(solution.present)
                solution = solution.chosen()
                has_next[t - 1] = solution.children(n_prev) > 0
                labels[t] = lineage.advance(
                    t, solution, labels[t - 1], labels.get(t - 2, np.zeros(0, np.int64))
                )
            cell_labels = labels_of_cells(len(nodes[t]), merged[t], chosen[t], labels[t])
            if observe is not None:
                observe(nodes[t].table, cell_labels)
            yield result_mask(index.pop(t), merged[t], chosen[t], labels[t], cell_labels)
            solved += 1
            for old in [k for k in labels if k < t - 2]:
                del labels[old], nodes[old], chosen[old], merged[old]
                has_next.pop(old, None)
            scores.drop_before(t - 2)
            merged_scores.drop_before(t - 2)

    n = 0
    measured = _measured(images, masks, tracker)
    for t, frame_nodes, frame_index, frame_merged in (
        background(measured, prefetch) if prefetch else measured
    ):
        nodes[t], index[t], merged[t] = frame_nodes, frame_index, frame_merged
        n = t + 1
        if n - start == tracker.window:
            score(start, n)
            scored_until, start = n, start + tracker.stride
            yield from solve_up_to(start)
        elif t == 0:
            yield from solve_up_to(0)
    if scored_until < n and n - start >= 2:
        score(start, n)
    yield from solve_up_to(n - 1)


def _measured(
    images: Iterable[np.ndarray], masks: Iterable[np.ndarray], tracker: Tracker
) -> Iterator[tuple[int, FrameNodes, np.ndarray, MergedFrame | None]]:
    """Per frame: its index, its cells (`Tracker.nodes`), its compact label image and, with
    candidate cells, its alternative version (None where there is no candidate)."""
    solver = tracker.solver
    no_pairs = np.zeros((0, 2), np.int64)
    for t, (image, mask) in enumerate(zip(images, masks, strict=True)):
        if image.shape != mask.shape:
            raise CTCError(f"frame {t}: mask shape {mask.shape} differs from image {image.shape}")
        frame_nodes, compact = tracker.nodes(image, mask, t)
        merged = None
        if solver.unions or solver.splits:
            pairs = (
                cut_candidates(compact.index, compact.count, solver.union_contact)
                if solver.unions
                else no_pairs
            )
            splits = (
                split_candidates(compact.index, compact.count, solver.union_contact, pairs)
                if solver.splits
                else NO_SPLITS
            )
            if len(pairs) or len(splits):
                merged = merged_version(tracker, image, frame_nodes, compact, pairs, splits, t)
        yield t, frame_nodes, compact.index, merged


def check_inputs(images: FrameSequence, masks: MaskSequence, tracker: Tracker) -> None:
    """CTCError unless masks and images match in frame count and shape, and the model fits."""
    if len(masks) != len(images):
        raise CTCError(
            f"{len(masks)} mask frames but {len(images)} image frames in {images.folder}",
            masks.folder,
        )
    if masks.shape != images.shape:
        raise CTCError(
            f"masks have shape {masks.shape} but the images in {images.folder} {images.shape}",
            masks.folder,
        )
    tracker.check_ndim(images.ndim, images.folder)


def track_sequence(
    images: FrameSequence,
    masks: MaskSequence | Iterable[np.ndarray],
    tracker: Tracker,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    features_csv: str | Path | None = None,
    prefetch: int | None = None,
    observe: Callable[[pd.DataFrame, np.ndarray], None] | None = None,
    on_scores: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> list[Track]:
    """Track `masks` (a mask folder, or label frames from a segmenter) and write a CTC result.

    The result folder (`mask###.tif`, `res_track.txt`) appears only when complete. With
    `features_csv`, the cell feature table (one row per cell and frame, plus its `track`
    label) is written there as well, frame by frame. `observe` and `on_scores` are hooks of
    `track_stream` (e.g. `inference.tracking.scores.EdgeRecorder`); `observe` gets the labels
    as written, after the repairs (`inference.tracking.repair`), a few frames late. Returns
    the tracks written.

    Masks read from a folder are linked with one torch thread (unless OMP_NUM_THREADS says
    otherwise): the network passes are too small for intra-op threads to pay, and those
    spin and stall whenever another job holds a core (linking then slows down tenfold).
    Instead, where the process may use two cores (`prefetch` None), frames are read and
    embedded in a second thread (`prefetch` frames ahead, by default a window's stride; see
    `track_stream`); result masks are written in a third. That pays even when other jobs
    hold both cores (512x512, two busy loops beside it: 23 -> 31 frames/s). Masks from a
    segmenter keep the caller's settings and one thread.
    """
    from_files = isinstance(masks, MaskSequence)
    if from_files:
        check_inputs(images, masks, tracker)
        masks = _checked(masks)
    else:
        tracker.check_ndim(images.ndim, images.folder)
    if prefetch is None:
        # as far ahead as one window's burst of GNN and solver work: with fewer, the reader
        # stalls while the GNN runs (2 frames ahead: 46 frames/s at 512x512, 6: 51)
        prefetch = tracker.stride if from_files and cores() >= 2 else 0
    lineage = LineageBuilder()
    n = len(images)
    repairs = Repairs(lineage, tracker.solver.repair, n, tracker.division)
    observers = [o for o in (observe, features_csv and _FeatureWriter(features_csv)) if o]
    threads = 1 if from_files and "OMP_NUM_THREADS" not in os.environ else None
    with torch_threads(threads):
        stream = track_stream(
            images,
            masks,
            tracker,
            lineage,
            repairs.watch(_both(observers)) if observers else None,
            prefetch=prefetch,
            on_scores=on_scores,
        )
        write_result(
            out_dir,
            progress(repairs.apply(stream), n, "track"),
            _LazyTracks(repairs),
            n_frames=n,
            overwrite=overwrite,
        )
    return repairs.tracks()


def _checked(masks: MaskSequence) -> Iterator[np.ndarray]:
    """The frames of `masks`; a negative label is a CTCError naming its file."""
    for position, mask in enumerate(masks):
        if mask.dtype.kind == "i" and mask.size and mask.min() < 0:
            raise CTCError(
                f"negative label {mask.min()} in a label mask", masks.frames[position].path
            )
        yield mask


def _both(observers: list[Callable]) -> Callable[[pd.DataFrame, np.ndarray], None]:
    """One observer that calls each of `observers` in turn."""

    def observe(table: pd.DataFrame, labels: np.ndarray) -> None:
        for observer in observers:
            observer(table, labels)

    return observe


class _FeatureWriter:
    """Appends each frame's features and track labels to a CSV file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.first = True

    def __call__(self, table: pd.DataFrame, labels: np.ndarray) -> None:
        mode, header = ("w", True) if self.first else ("a", False)
        table.assign(track=labels).to_csv(self.path, mode=mode, header=header, index=False)
        self.first = False


class _LazyTracks:
    """The repaired lineage's tracks, read only when `write_result` asks (after the last
    frame)."""

    def __init__(self, repairs: Repairs) -> None:
        self.repairs = repairs

    def __iter__(self) -> Iterator[Track]:
        return iter(self.repairs.tracks())
