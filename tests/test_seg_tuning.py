"""The threshold search's precision: counted against tracking markers (every cell), and the
smallest kept cell among the thresholds it may raise."""

from __future__ import annotations

import numpy as np

from seg_code.postprocess import PostprocessParams
from training.segmentation.fit_segmenter import _score, tune_postprocess
from training.segmentation.metrics import marker_counts
from training.segmentation.samples import SegSample


def _disc(shape, centre, radius) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_marker_counts_find_pieces_and_debris_that_seg_masks_cannot():
    shape = (60, 90)
    markers = np.zeros(shape, np.int32)
    for label, centre in enumerate([(20, 20), (20, 50), (45, 75)], 1):
        markers[_disc(shape, centre, 8)] = label
    pred = np.zeros(shape, np.int32)
    pred[_disc(shape, (20, 20), 9)] = 1  # cell 1, whole
    pred[(markers == 2) & (np.arange(shape[1]) < 53)] = 2  # most of cell 2 ...
    pred[(markers == 2) & (np.arange(shape[1]) >= 53)] = 3  # ... and its smaller piece
    pred[_disc(shape, (50, 20), 4)] = 4  # debris; cell 3 is missed
    assert marker_counts(markers, pred) == (4, 2)
    assert marker_counts(markers, np.zeros(shape, np.int32)) == (0, 0)
    assert marker_counts(np.zeros(shape, np.int32), pred) == (4, 0)


def _probabilities(shape, cells, debris) -> np.ndarray:
    """Probability maps in which cells and debris both look like confident cells."""
    p = np.zeros((4, *shape), np.float32)
    p[0] = 1.0
    for centre, radius in [*cells, *debris]:
        inside = _disc(shape, centre, radius)
        p[1][inside], p[0][inside] = 0.9, 0.1
        p[3][_disc(shape, centre, max(radius // 3, 2))] = 0.9
    return p


def test_search_raises_the_smallest_kept_cell_above_debris():
    shape = (120, 160)
    cells = [((30, 30), 14), ((30, 90), 14), ((85, 60), 14), ((85, 125), 14)]
    debris = [((70, 20), 7), ((15, 140), 7), ((110, 100), 6)]
    labels = np.zeros(shape, np.int32)
    for label, (centre, radius) in enumerate(cells, 1):
        labels[_disc(shape, centre, radius)] = label
    sample = SegSample(0, np.zeros((2, *shape), np.float32), labels, np.ones(shape, bool), "gold")
    sample.markers = labels
    probs = [_probabilities(shape, cells, debris)]
    base = PostprocessParams(min_cell_size=40, min_centre_size=3)
    before = _score(probs, [sample], base)
    assert before["precision"] == 4 / 7 and before["recall"] == 1.0
    tuned, scores = tune_postprocess(probs, [sample], base)
    assert 160 <= tuned.min_cell_size <= 320  # above the debris (~150 px), below cells (~615)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0
