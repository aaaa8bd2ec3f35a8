"""Ground truth for training: true links (daughters, gaps) and marker-only TRA folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from inference.cli import main
from inference.errors import CTCError
from inference.io import Track, open_masks, read_tiff, write_mask, write_tracks
from training.simulator import get_preset, simulate
from training.tracked import Lineage, tracked_frames


def test_links_are_same_track_daughters_and_gap_continuations():
    lineage = Lineage.read_tracks(
        [Track(1, 0, 3), Track(2, 4, 6, 1), Track(3, 4, 4, 1), Track(4, 6, 7, 3)]
    )
    a, b = np.array([1, 1, 1, 3, 2]), np.array([1, 2, 3, 4, 3])
    # frame 4 seen from frame 3 (gap 1): 1 -> 1 (same), 1 -> 2 and 1 -> 3 (daughters)
    assert lineage.is_link(a[:3], b[:3], frame_b=4, gap=1).tolist() == [True, True, True]
    # track 4 starts at 6 with parent 3, which ended at 4: a link across one missed frame
    assert lineage.is_link(np.array([3]), np.array([4]), frame_b=6, gap=2).tolist() == [True]
    assert lineage.is_link(np.array([3]), np.array([4]), frame_b=7, gap=1).tolist() == [False]
    assert lineage.is_link(np.array([2, 0]), np.array([3, 0]), 5, 1).tolist() == [False, False]


def _markers(dataset: Path) -> Path:
    """Replace TRA's full masks by small discs at each cell's centre, as real CTC TRA."""
    tra = dataset / "01_GT" / "TRA"
    for path in sorted(tra.glob("man_track*.tif")):
        full = read_tiff(path)
        marks = np.zeros_like(full)
        labels = np.unique(full)[1:]
        for label, centre in zip(
            labels, ndimage.center_of_mass(full > 0, full, labels), strict=True
        ):
            y, x = (int(round(c)) for c in centre)
            marks[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3] = label
        write_mask(path, marks)
    return tra


def test_marker_only_ground_truth_needs_masks_and_matches_them(tmp_path):
    preset = get_preset("Fluo-N2DH-SIM+").with_options(frames=4, size=(128, 128), cells=5)
    simulate(tmp_path / "data", preset, seed=3)
    full = tmp_path / "full"
    full.mkdir()
    for t, mask in enumerate(open_masks(tmp_path / "data/01_GT/TRA")):
        write_mask(full / f"mask{t:03d}.tif", (mask > 0) * (mask.astype(np.uint32) * 7 % 1000 + 1))
    _markers(tmp_path / "data")
    with pytest.raises(CTCError, match="markers"):
        tracked_frames(tmp_path / "data")
    frames, _, ndim = tracked_frames(tmp_path / "data", masks_dir=full)
    for frame in frames:
        truth = open_masks(tmp_path / "data/01_GT/TRA").read(frame.frame)
        assert set(frame.track_ids.tolist()) == set(np.unique(truth)[1:].tolist())
        # each cell of the given masks got the id of the marker inside it
        for label, track in zip(frame.compact.labels, frame.track_ids, strict=True):
            cell = read_tiff(full / f"mask{frame.frame:03d}.tif") == label
            assert np.unique(truth[cell & (truth > 0)]).tolist() == [track]
    assert ndim == 2


def test_mask_folder_of_another_length_is_refused(tmp_path):
    preset = get_preset("Fluo-N2DH-SIM+").with_options(frames=3, size=(96, 96), cells=3)
    simulate(tmp_path / "data", preset, seed=1)
    short = tmp_path / "short"
    short.mkdir()
    write_mask(short / "mask000.tif", np.zeros((96, 96), np.uint16))
    write_tracks(short / "unused.txt", [])
    with pytest.raises(CTCError, match="1 frames"):
        tracked_frames(tmp_path / "data", masks_dir=short)


def test_too_few_cells_for_metric_learning_is_a_clear_error(tmp_path):
    preset = get_preset("Fluo-N2DH-SIM+").with_options(frames=3, size=(96, 96), cells=1)
    simulate(tmp_path / "data", preset, seed=1)
    result = CliRunner().invoke(
        main,
        [
            "train-embedding",
            str(tmp_path / "data"),
            "--model",
            str(tmp_path / "params"),
            "--iterations",
            "1",
        ],
    )
    assert result.exit_code == 2
    assert "at least 4 tracked cells" in result.output and str(tmp_path / "data") in result.output
    assert not (tmp_path / "params").exists()
