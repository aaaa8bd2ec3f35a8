"""The shipped models on a sequence with divisions, a missed cell, cells entering and leaving.

`gnntrack track` (GT masks with one cell removed from one frame) and `gnntrack run` (the
shipped segmenter) are run as a user runs them and scored by py-ctcmetrics: BC(0) and LNK,
not only TRA/DET, and the bridged gap is read off the result (one track, the missed frame
filled in by inference/tracking/repair/). A tracker that never divides, or never bridges
a gap, fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scenario import FRAMES, GAP_FRAME, Scenario, make_scenario

from inference.cli import main
from inference.ctc_rules import validate_result
from inference.io import Track, read_tiff, read_tracks
from inference.measures import evaluate

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "parameters" / "Fluo-N2DH-SIM+"  # trained on the real SIM+ sequence
SIM_SIM = ROOT / "parameters" / "Fluo-N2DH-SIM+-sim"  # trained on the simulator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    return make_scenario(tmp_path_factory.mktemp("events") / "data")


def _invoke(*args: str | Path) -> None:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def _division_count(tracks: list[Track]) -> int:
    """Tracks with two daughters (a gap continuation is one child, not a division)."""
    parents = [t.parent for t in tracks if t.parent]
    return sum(parents.count(p) == 2 for p in set(parents))


def _label_at(res: Path, frame: int, pixel: tuple[int, int]) -> int:
    return int(read_tiff(res / f"mask{frame:03d}.tif")[pixel])


def _lineage_by_first_pixel(folder: Path, prefix: str, tracks: list[Track]) -> set:
    """Each track as (begin, end, parent's begin, pixel at begin): label-free, comparable."""
    first = {}
    for track in tracks:
        mask = read_tiff(folder / f"{prefix}{track.begin:03d}.tif")
        ys, xs = np.nonzero(mask == track.label)
        first[track.label] = (track.begin, int(ys[0]), int(xs[0]))
    return {(t.begin, t.end, first[t.parent] if t.parent else None, first[t.label]) for t in tracks}


def test_the_sequence_holds_every_event(scenario):
    tracks = scenario.tracks()
    last = FRAMES - 1
    mothers = {t.parent for t in tracks if t.parent}
    assert _division_count(tracks) >= 3
    assert sum(t.begin > 0 and t.parent == 0 for t in tracks) >= 2  # cells entering
    assert any(t.end < last and t.label not in mothers for t in tracks)  # a cell leaving
    gap = {t.label: t for t in tracks}
    assert gap[scenario.gap_track].end == GAP_FRAME - 1
    successor = gap[scenario.gap_successor]
    assert (successor.begin, successor.parent) == (GAP_FRAME + 1, scenario.gap_track)
    assert scenario.gap_track not in read_tiff(scenario.masks / f"man_track{GAP_FRAME:03d}.tif")


@pytest.mark.parametrize("params", [SIM, SIM_SIM], ids=["SIM+", "SIM+-sim"])
def test_shipped_trackers_divide_and_bridge_the_gap(scenario, params, tmp_path):
    res = tmp_path / "res"
    _invoke("track", "--images", scenario.images, "--masks", scenario.masks, "--model", params,
            "--out", res)  # fmt: skip
    assert validate_result(res, images_dir=scenario.images) == []
    # scored against the truth (the missed cell was there): the repair fills it in
    scores = evaluate(res, scenario.uncut_gt, ["TRA", "DET", "LNK", "BC(0)", "CT"])
    assert scores["DET"] == 1.0  # GT masks and the missed cell
    assert scores["fn_div(0)"] == 0 and scores["tp_div(0)"] == scores["gt_divisions"] >= 3
    # the missed cell: one track across the gap, with a mask in the frame it was missed
    tracks = {t.label: t for t in read_tracks(res / "res_track.txt")}
    before = _label_at(res, GAP_FRAME - 1, scenario.before_centre)
    after = _label_at(res, GAP_FRAME + 1, scenario.gap_centre)
    assert before == after and before in read_tiff(res / f"mask{GAP_FRAME:03d}.tif")
    assert tracks[before].begin < GAP_FRAME < tracks[before].end
    if params == SIM_SIM:  # trained on the simulator: the whole lineage is the truth
        assert scores["BC(0)"] == 1.0 and scores["LNK"] == 1.0 and scores["CT"] == 1.0
        uncut = read_tracks(scenario.uncut_gt / "TRA" / "man_track.txt")
        truth = _lineage_by_first_pixel(scenario.uncut_gt / "TRA", "man_track", uncut)
        found = _lineage_by_first_pixel(res, "mask", list(tracks.values()))
        assert found == truth
    else:  # measured 0.75 / 0.964: false divisions at the border (README)
        assert scores["BC(0)"] >= 0.7 and scores["LNK"] >= 0.95 and scores["TRA"] >= 0.99


def test_run_with_the_shipped_models_finds_cells_divisions_and_tracks(scenario, tmp_path):
    res = tmp_path / "run"
    _invoke("run", scenario.root, "01", "--model", SIM, "--out", res)
    assert validate_result(res, images_dir=scenario.images) == []
    scores = evaluate(res, scenario.uncut_gt, ["TRA", "DET", "LNK", "BC(0)"])
    # measured: DET 0.961, TRA 0.944, LNK 0.822 (a few touching cells merged), 22 tracks
    assert scores["DET"] >= 0.93 and scores["TRA"] >= 0.9 and scores["LNK"] >= 0.75, scores
    assert scores["tp_div(0)"] == scores["gt_divisions"] == 3, scores
    found = read_tracks(res / "res_track.txt")
    truth = read_tracks(scenario.uncut_gt / "TRA/man_track.txt")
    assert abs(len(found) - len(truth)) <= 6, (len(found), len(truth))
