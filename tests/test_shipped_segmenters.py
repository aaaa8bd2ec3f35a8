"""The shipped GOWT1 and MSC segmenters, which run the network at half resolution (scale 0.5).

`gnntrack segment` on a small simulated sequence of each dataset's look (the look their
training added with `--extra`): the masks come back at full size and find the cells.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from inference.cli import main
from inference.io import open_images, open_masks
from inference.measures import match_labels
from inference.segmentation.segmenter import Segmenter
from training.simulator import get_preset, simulate

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: dataset -> (frame size, cells, least mean IoU of the matched cells; measured 0.97 / 0.57)
CASES = {
    "Fluo-N2DH-GOWT1": ((320, 320), 6, 0.9),
    "Fluo-C2DL-MSC": ((384, 384), 3, 0.45),
}


@pytest.mark.parametrize("dataset", CASES)
def test_half_resolution_models_segment_at_full_size(dataset, tmp_path):
    size, cells, least_iou = CASES[dataset]
    model = ROOT / "parameters" / dataset / "seg"
    segmenter = Segmenter.from_folder(model)
    assert segmenter.scale == 0.5  # the path under test
    preset = get_preset(dataset).with_options(frames=3, size=size, cells=cells)
    simulate(tmp_path / "data", preset, seed=5)
    images = open_images(tmp_path / "data/01")
    assert segmenter.normalize(images.read(0)).shape == tuple(s // 2 for s in size)
    out = tmp_path / "masks"
    result = CliRunner().invoke(
        main, ["segment", "--images", str(images.folder), "--out", str(out), "--model", str(model)]
    )
    assert result.exit_code == 0, result.output
    gt = open_masks(tmp_path / "data/01_GT/TRA")
    matched = total = 0
    ious = []
    for truth, mask in zip(gt, open_masks(out), strict=True):
        assert mask.shape == size  # full size, though the network saw half
        labels_gt, _, found, _, iou = match_labels(truth, mask)
        total, matched = total + len(labels_gt), matched + len(found)
        ious += iou
    assert matched >= 0.8 * total, (matched, total)
    assert np.mean(ious) >= least_iou
