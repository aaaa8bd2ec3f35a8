"""The shipped Fluo-N2DH-SIM+ tracker on the frames it never saw (52-64 of ../shared/ctc 01).

Linking-only on the GT masks, scored by py-ctcmetrics against the targets of issue 5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.io import open_images, open_masks
from inference.measures import evaluate
from inference.models.tracker import Tracker
from inference.pipeline import track_masks

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "ctc" / "Fluo-N2DH-SIM+"
PARAMS = ROOT / "parameters" / "Fluo-N2DH-SIM+"
if not DATASET.is_dir() or not (PARAMS / "tracker").is_dir():
    pytest.skip("needs ../shared/ctc/Fluo-N2DH-SIM+ and the shipped model", allow_module_level=True)

from training.cut_sequence import cut_sequence  # noqa: E402

pytestmark = [pytest.mark.realdata, pytest.mark.usefixtures("one_torch_thread")]


def test_held_out_frames_meet_the_targets(tmp_path):
    data = cut_sequence(DATASET, "01", 52, 65, tmp_path / "data")
    tracker = Tracker.from_folder(PARAMS)
    images, masks = open_images(data / "01"), open_masks(data / "01_GT" / "TRA")
    track_masks(images, masks, tracker, tmp_path / "res")
    scores = evaluate(tmp_path / "res", data / "01_GT", ["TRA", "BC(0)", "CT"])
    assert scores["TRA"] >= 0.999
    assert scores["BC(0)"] >= 0.97
    assert scores["CT"] >= 0.95
