"""Segmentation errors repaired by the tracker (inference/tracking/repair/), scored by the
CTC measures against the undamaged ground truth.

The scenario's simulated GT masks (tests/scenario.py) get one mistake each, made with the
error injector's own functions: a cell missing for one frame, a cell cut in two for one
frame, a spurious blob, two neighbours merged into one object for one frame. The shipped
simulator-trained tracker links them with the repairs on and, where a test needs the
contrast, off; every result must pass the CTC rules. The trackers' candidate cells (the
solver's unions and splits, which handle cuts and fused cells before any repair) are off
here, so that the repairs are what is tested.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scenario import GAP_FRAME, Scenario, make_scenario, plain_pair, plain_track
from scipy import ndimage as ndi

from inference.ctc_rules import validate_result
from inference.io import Track, open_masks, read_tiff, read_tracks, write_mask
from inference.measures import evaluate
from inference.models.tracker import Tracker
from inference.pipeline import track_masks
from inference.tracking.lineage import LineageBuilder
from inference.tracking.repair import RepairParams, Repairs
from inference.tracking.solve import PairSolution
from training.mask_errors import add_blob, cut_cell, merge_cells
from training.segmentation.samples import typical_radius
from training.simulator import get_preset, simulate

ROOT = Path(__file__).resolve().parents[1]
SIM_SIM = ROOT / "parameters" / "Fluo-N2DH-SIM+-sim" / "tracker"  # trained on the simulator
SIM = ROOT / "parameters" / "Fluo-N2DH-SIM+" / "tracker"  # trained on the real SIM+ sequence
ERROR_FRAME = 6  # the frame damaged by the cut and the blob
OFF = RepairParams(
    fill_gaps=False, merge_cuts=False, drop_spurious=False, split_merges=False,
    border_entries=False,
)  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    return make_scenario(tmp_path_factory.mktemp("repair") / "data")


def _repairs_only(folder: Path) -> Tracker:
    """The shipped tracker with its candidate cells off, so that what keeps a damaged cell
    whole here is the repairs (the solver's candidates: tests/test_candidates.py)."""
    tracker = Tracker.from_folder(folder)
    solver = dataclasses.replace(tracker.solver, unions=False, splits=False)
    return dataclasses.replace(tracker, solver=solver)


@pytest.fixture(scope="module")
def tracker() -> Tracker:
    return _repairs_only(SIM_SIM)


@pytest.fixture(scope="module")
def sim_tracker() -> Tracker:
    return _repairs_only(SIM)


def _with(tracker: Tracker, repair: RepairParams, candidates: bool | None = None) -> Tracker:
    """`tracker` with the repairs `repair` (and candidate cells, unions and splits, on or
    off, if given)."""
    solver = dataclasses.replace(tracker.solver, repair=repair)
    if candidates is not None:
        solver = dataclasses.replace(solver, unions=candidates, splits=candidates)
    return dataclasses.replace(tracker, solver=solver)


def _track(scenario: Scenario, masks: Path, tracker: Tracker, out: Path) -> dict:
    """Link `masks`, check the CTC rules, score against the undamaged GT."""
    track_masks(scenario.images, masks, tracker, out)
    assert validate_result(out, images_dir=scenario.images) == []
    return evaluate(out, scenario.uncut_gt, ["TRA", "DET", "BC(0)", "CT"])


def _damaged(scenario: Scenario, folder: Path, damage) -> Path:
    """The undamaged GT masks as `mask###.tif`, frame ERROR_FRAME passed through `damage`."""
    return _damaged_at(scenario, folder, ERROR_FRAME, damage)


def _plain_track(scenario: Scenario) -> int:
    """A GT track alive two frames around ERROR_FRAME, not a mother, away from the border."""
    return plain_track(scenario, ERROR_FRAME)


def _divisions(tracks: list[Track]) -> int:
    parents = [t.parent for t in tracks if t.parent]
    return sum(parents.count(p) == 2 for p in set(parents))


def test_a_missed_cell_keeps_its_identity_and_gets_a_mask(scenario, tracker, tmp_path):
    scores = _track(scenario, scenario.masks, tracker, tmp_path / "res")
    res = tmp_path / "res"
    label = int(read_tiff(res / f"mask{GAP_FRAME - 1:03d}.tif")[scenario.before_centre])
    after = int(read_tiff(res / f"mask{GAP_FRAME + 1:03d}.tif")[scenario.gap_centre])
    assert label and after == label  # one track across the gap, no parent/child pair
    assert label in read_tiff(res / f"mask{GAP_FRAME:03d}.tif")  # and a mask in it
    track = next(t for t in read_tracks(res / "res_track.txt") if t.label == label)
    assert track.begin < GAP_FRAME < track.end
    # against the truth (the cell was there): the filled mask matches it
    assert scores["DET"] == 1.0 and scores["CT"] == 1.0 and scores["TRA"] == 1.0, scores


@pytest.mark.parametrize("model", ["SIM+-sim", "SIM+"])
def test_a_cell_cut_for_one_frame_stays_one_track_without_a_division(
    scenario, tracker, sim_tracker, model, tmp_path
):
    tracker = tracker if model == "SIM+-sim" else sim_tracker
    label = _plain_track(scenario)
    masks = _damaged(
        scenario, tmp_path / "cut", lambda m: cut_cell(m, label, int(m.max()) + 1, _rng())
    )
    # as on the undamaged masks (the real-SIM+ model divides twice at the border there)
    plain, scores = _divisions_as_on_clean_masks(scenario, masks, tracker, tmp_path)
    # the two pieces are one cell under one label: the cell is detected, its track whole
    cut = read_tiff(masks / f"mask{ERROR_FRAME:03d}.tif")
    res = read_tiff(tmp_path / "res" / f"mask{ERROR_FRAME:03d}.tif")
    pieces = np.unique(res[(cut == label) | (cut == cut.max())])
    assert len(pieces) == 1 and pieces[0] > 0
    assert scores["DET"] == 1.0 and scores["CT"] == plain["CT"], scores


def _cut_with_gap(mask: np.ndarray, label: int) -> None:
    """`label` cut in two through its centre, a 2-pixel gap of background between the pieces
    (a segmenter's thin false boundary): no border joins them."""
    new = int(mask.max()) + 1
    assert cut_cell(mask, label, new, _rng())
    near_new = ndi.binary_dilation(mask == new)
    near_old = ndi.binary_dilation(mask == label)
    mask[((mask == label) & near_new) | ((mask == new) & near_old)] = 0


def test_a_cell_cut_with_a_gap_for_one_frame_stays_one_track(scenario, tracker, tmp_path):
    label = _plain_track(scenario)
    masks = _damaged(scenario, tmp_path / "cut", lambda m: _cut_with_gap(m, label))
    cut = read_tiff(masks / f"mask{ERROR_FRAME:03d}.tif")
    plain, scores = _divisions_as_on_clean_masks(scenario, masks, tracker, tmp_path)
    res = read_tiff(tmp_path / "res" / f"mask{ERROR_FRAME:03d}.tif")
    pieces = np.unique(res[(cut == label) | (cut == cut.max())])
    assert len(pieces) == 1 and pieces[0] > 0  # both pieces written as the one cell
    assert scores["DET"] == 1.0 and scores["CT"] == plain["CT"], scores


def _plain_pair(scenario: Scenario, beside_division: bool) -> tuple[int, int, int]:
    """Two plain tracks less than 8 px apart in ERROR_FRAME (`scenario.plain_pair`)."""
    return plain_pair(scenario, ERROR_FRAME, beside_division)


def _majority(mask: np.ndarray, cells: np.ndarray) -> int:
    values, counts = np.unique(mask[cells], return_counts=True)
    return int(values[np.argmax(counts)])


@pytest.mark.parametrize(
    ("model", "beside_division"), [("SIM+-sim", False), ("SIM+", False), ("SIM+-sim", True)]
)
def test_two_cells_merged_for_one_frame_stay_two_tracks_and_get_their_pixels_back(
    scenario, tracker, sim_tracker, model, beside_division, tmp_path
):
    """...and a real division next to the merge (one frame before it) survives."""
    tracker = tracker if model == "SIM+-sim" else sim_tracker
    a, b, gap = _plain_pair(scenario, beside_division)
    masks = _damaged(scenario, tmp_path / "merged", lambda m: merge_cells(m, a, b, gap))
    merged = read_tiff(masks / f"mask{ERROR_FRAME:03d}.tif")
    assert not (merged == b).any() and ndi.label(merged == a)[1] == 1  # one object
    # no false division where the object parts, and the real divisions all found
    plain, scores = _divisions_as_on_clean_masks(scenario, masks, tracker, tmp_path)
    # each cell keeps its track through the merged frame, on (most of) its own pixels
    truth = [
        read_tiff(scenario.uncut_gt / "TRA" / f"man_track{ERROR_FRAME + d:03d}.tif")
        for d in (-1, 0, 1)
    ]
    res = [read_tiff(tmp_path / "res" / f"mask{ERROR_FRAME + d:03d}.tif") for d in (-1, 0, 1)]
    for cell in (a, b):
        labels = {_majority(r, g == cell) for r, g in zip(res, truth, strict=True)}
        assert len(labels) == 1 and labels != {0}, (cell, labels)
        given = res[1][truth[1] == cell] == _majority(res[1], truth[1] == cell)
        assert given.mean() > 0.9
    assert _majority(res[1], truth[1] == a) != _majority(res[1], truth[1] == b)
    assert scores["DET"] == 1.0 and scores["CT"] == plain["CT"], scores
    # without the repair the merge ends a track and the object "divides" back into two
    off = dataclasses.replace(tracker.solver.repair, split_merges=False)
    scores = _track(scenario, masks, _with(tracker, off, candidates=False), tmp_path / "off")
    assert scores["fp_div(0)"] > plain["fp_div(0)"] and scores["CT"] < plain["CT"], scores


def test_a_one_frame_blob_disappears(scenario, tracker, tmp_path):
    def blob(mask: np.ndarray) -> None:
        radius = typical_radius([mask])
        assert add_blob(mask, int(mask.max()) + 1, radius / 2, _rng())

    masks = _damaged(scenario, tmp_path / "blob", blob)
    scores = _track(scenario, masks, tracker, tmp_path / "res")
    blob_label = int(read_tiff(masks / f"mask{ERROR_FRAME:03d}.tif").max())
    damaged = read_tiff(masks / f"mask{ERROR_FRAME:03d}.tif") == blob_label
    assert not read_tiff(tmp_path / "res" / f"mask{ERROR_FRAME:03d}.tif")[damaged].any()
    assert scores["DET"] == 1.0 and scores["TRA"] == 1.0, scores


def test_real_divisions_survive_and_perfect_masks_are_unchanged(scenario, tracker, tmp_path):
    on = _track(scenario, scenario.uncut_gt / "TRA", tracker, tmp_path / "on")
    off = _track(scenario, scenario.uncut_gt / "TRA", _with(tracker, OFF), tmp_path / "off")
    assert on["tp_div(0)"] == on["gt_divisions"] >= 3 and on["fp_div(0)"] == 0, on
    assert on == off
    assert read_tracks(tmp_path / "on" / "res_track.txt") == read_tracks(
        tmp_path / "off" / "res_track.txt"
    )
    for t in range(len(open_masks(tmp_path / "on"))):
        name = f"mask{t:03d}.tif"
        assert np.array_equal(read_tiff(tmp_path / "on" / name), read_tiff(tmp_path / "off" / name))


def test_each_repair_can_be_switched_off(scenario, tracker, sim_tracker, tmp_path):
    """With the repairs off, the same masks give the errors the repairs remove (candidate
    cells off too: with them the solver links the cut cell whole, tests/test_candidates.py)."""
    scores = _track(scenario, scenario.masks, _with(tracker, OFF), tmp_path / "gap")
    assert scores["DET"] < 1.0  # the missed cell stays missed
    label = _plain_track(scenario)
    masks = _damaged(
        scenario, tmp_path / "cut", lambda m: cut_cell(m, label, int(m.max()) + 1, _rng())
    )
    plain = _track(scenario, scenario.uncut_gt / "TRA", tracker, tmp_path / "plain")
    for model, name in ((tracker, "sim"), (sim_tracker, "real")):
        scores = _track(scenario, masks, _with(model, OFF, candidates=False), tmp_path / name)
        # the cut: the model trained on the simulator breaks the track, the other divides
        if name == "sim":
            assert scores["CT"] < plain["CT"] and scores["fp_div(0)"] == 0, scores
        else:
            assert scores["fp_div(0)"] >= 1, scores


def _rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_a_missed_cell_is_filled_in_3d():
    """The repairs work on arrays of any dimension: a 3D cell missed in frame 2."""
    lineage = LineageBuilder()
    repairs = Repairs(lineage, RepairParams(), n_frames=5)
    follows = PairSolution(np.array([0]), np.array([False]))
    missed = PairSolution(np.zeros(0, np.int64), np.zeros(0, bool))
    bridged = PairSolution(np.array([0]), np.array([True]))  # from frame 1
    steps = [None, follows, missed, bridged, follows]
    labels: dict[int, np.ndarray] = {}
    out = []
    for t, solution in enumerate(steps):
        mask = np.zeros((8, 32, 32), np.uint16)
        if t != 2:
            mask[2:6, 10:16, 4 + 3 * t : 10 + 3 * t] = 1  # moves 3 px a frame along x
        if t == 0:
            labels[0] = lineage.start(0, 1)
        else:
            prev2 = labels.get(t - 2, np.zeros(0, np.int64))
            labels[t] = lineage.advance(t, solution, labels[t - 1], prev2)
        lut = np.r_[0, labels[t]].astype(np.uint16)
        out += repairs.push(lut[mask] if labels[t].size else mask)
    out += repairs.finish()
    assert len(out) == 5
    assert repairs.tracks() == [Track(1, 0, 4, 0)]
    filled = np.argwhere(out[2] == 1)
    assert len(filled) == 4 * 6 * 6 and filled[:, 2].min() == 4 + 3 * 2  # halfway: x + 6


def test_feature_table_and_edge_file_name_the_cells_as_written(scenario, tracker, tmp_path):
    """The --features and --edges side files follow the repairs: the gap is one track,
    linked across the filled frame, and every label they name is in the result."""
    res, features, edges = tmp_path / "res", tmp_path / "cells.csv", tmp_path / "edges.csv"
    track_masks(
        scenario.images, scenario.masks, tracker, res, features_csv=features, edges_csv=edges
    )
    label = int(read_tiff(res / f"mask{GAP_FRAME - 1:03d}.tif")[scenario.before_centre])
    cells, links = pd.read_csv(features), pd.read_csv(edges)
    written = {t.label for t in read_tracks(res / "res_track.txt")}
    assert set(cells["track"]) <= written
    assert set(links["label_source"]) | set(links["label_target"]) <= written
    rows = cells[cells["track"] == label]
    assert GAP_FRAME - 1 in set(rows["frame"]) and GAP_FRAME + 1 in set(rows["frame"])
    bridge = links[
        (links["label_source"] == label)
        & (links["label_target"] == label)
        & (links["t_source"] == GAP_FRAME - 1)
        & (links["t_target"] == GAP_FRAME + 1)
    ]
    assert len(bridge) == 1 and bridge["linked"].iloc[0] == 1


def _divisions_as_on_clean_masks(scenario, masks, tracker, tmp_path):
    """Track the damaged `masks` and the undamaged truth; assert that the damaged result has
    the clean one's divisions (every GT division found, no more false ones, at most the two
    border divisions of the real-SIM+ model). Returns both score dicts (clean, damaged)."""
    plain = _track(scenario, scenario.uncut_gt / "TRA", tracker, tmp_path / "plain")
    scores = _track(scenario, masks, tracker, tmp_path / "res")
    assert scores["fp_div(0)"] == plain["fp_div(0)"] <= 2, scores
    assert scores["tp_div(0)"] == plain["tp_div(0)"] == scores["gt_divisions"], scores
    divisions = _divisions(read_tracks(tmp_path / "res" / "res_track.txt"))
    assert divisions == _divisions(read_tracks(tmp_path / "plain" / "res_track.txt"))
    return plain, scores


#: A sequence with two divisions whose mother lives two frames before and whose daughters
#: three after, all 10 px off the border (the scenario's division touches it)
DIVISION_SEED = 11


@dataclasses.dataclass(frozen=True)
class _Dividing:
    """A simulated CTC dataset whose GT is also the truth (`images`, `uncut_gt`)."""

    root: Path

    @property
    def images(self) -> Path:
        return self.root / "01"

    @property
    def uncut_gt(self) -> Path:
        return self.root / "01_GT"


@pytest.fixture(scope="module")
def dividing(tmp_path_factory) -> _Dividing:
    root = tmp_path_factory.mktemp("dividing") / "data"
    preset = get_preset("Fluo-N2DH-SIM+").with_options(
        frames=12, size=(224, 224), cells=6, seg_fraction=0.25
    )
    simulate(root, dataclasses.replace(preset, division_rate=0.04, entry_rate=0.6), DIVISION_SEED)
    return _Dividing(root)


def _division(data: _Dividing) -> tuple[Track, Track, Track]:
    """A GT division (mother, daughter, daughter): the mother lives two frames before it,
    the daughters three after, all 10 px off the border in those frames."""
    masks = data.uncut_gt / "TRA"
    tracks = read_tracks(masks / "man_track.txt")
    n = len(open_masks(masks))
    for mother in tracks:
        daughters = [t for t in tracks if t.parent == mother.label]
        if len(daughters) != 2 or mother.end - mother.begin < 2:
            continue
        birth = daughters[0].begin
        if any(d.end - d.begin < 3 for d in daughters) or birth + 3 >= n:
            continue
        cells = [(mother.label, birth - 2), (mother.label, birth - 1)]
        cells += [(d.label, birth) for d in daughters]
        if all(_off_border(masks, label, t) for label, t in cells):
            return mother, daughters[0], daughters[1]
    raise AssertionError("no division to damage")


def _off_border(masks: Path, label: int, t: int, margin: int = 10) -> bool:
    mask = read_tiff(masks / f"man_track{t:03d}.tif")
    ys, xs = np.nonzero(mask == label)
    if not len(ys):
        return False
    return min(ys.min(), xs.min(), mask.shape[0] - ys.max(), mask.shape[1] - xs.max()) > margin


def _damaged_at(
    data: Scenario | _Dividing, folder: Path, frames: int | tuple[int, ...], damage
) -> Path:
    """The undamaged GT masks as `mask###.tif`, frame(s) `frames` passed through `damage`."""
    folder.mkdir()
    frames = (frames,) if isinstance(frames, int) else frames
    for t, mask in enumerate(open_masks(data.uncut_gt / "TRA")):
        mask = np.asarray(mask, np.int64)
        if t in frames:
            damage(mask)
        write_mask(folder / f"mask{t:03d}.tif", mask)
    return folder


def _drop(mask: np.ndarray, label: int) -> None:
    assert (mask == label).any()
    mask[mask == label] = 0


@pytest.mark.parametrize(
    ("what", "when"),
    [
        ("mother cut", -1),  # her pieces would become the daughters a frame early
        ("mother cut twice", -2),  # ... two frames early (cut in frames -2 and -1)
        ("mother missed", -1),  # one daughter would continue her, the other come from nowhere
        ("daughter cut", 0),  # one piece a daughter, the other a cell without a parent
    ],
)
def test_a_division_next_to_a_segmentation_error_is_found_at_its_frame(
    dividing, tracker, what, when, tmp_path
):
    mother, first, second = _division(dividing)
    frame = first.begin + when
    cell = mother.label if what.startswith("mother") else second.label
    if what == "mother missed":
        masks = _damaged_at(dividing, tmp_path / "damaged", frame, lambda m: _drop(m, cell))
    elif what == "mother cut twice":
        masks = _damaged_at(
            dividing,
            tmp_path / "damaged",
            (frame, frame + 1),
            lambda m: cut_cell(m, cell, int(m.max()) + 1, _rng()),
        )
    else:
        masks = _damaged_at(
            dividing,
            tmp_path / "damaged",
            frame,
            lambda m: cut_cell(m, cell, int(m.max()) + 1, _rng()),
        )
    # every GT division found at its frame, no false one, as on the undamaged masks
    plain, scores = _divisions_as_on_clean_masks(dividing, masks, tracker, tmp_path)
    assert scores["DET"] == plain["DET"] and scores["CT"] == plain["CT"], (scores, plain)
    # the damaged cell is one object (for the missed mother: one filled in)
    res = read_tiff(tmp_path / "res" / f"mask{frame:03d}.tif")
    truth = read_tiff(dividing.uncut_gt / "TRA" / f"man_track{frame:03d}.tif")
    labels, counts = np.unique(res[truth == cell], return_counts=True)
    assert labels[np.argmax(counts)] > 0 and counts.max() > 0.5 * (truth == cell).sum()
    if what != "mother missed":
        assert len(labels) == 1, "the cut cell is one object again"


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


@pytest.mark.parametrize("repair", [True, False])
def test_a_cell_missed_beside_a_neighbour_is_not_taken_for_its_daughter(repair):
    """Cell B is missed in frame 2; the solver gives B's return in frame 3 to its neighbour
    A as a daughter. The repair makes it B's track again, filled in frame 2, and A keeps
    one track with no division; switched off, the false division stays."""
    shape, n = (64, 96), 8
    a, b = _disc(shape, (32, 30), 12), _disc(shape, (32, 62), 9)
    follows = PairSolution(np.array([0, 1]), np.array([False, False]))
    steps = [
        None,
        follows,
        PairSolution(np.array([0]), np.array([False])),  # B missed: A only
        PairSolution(np.array([0, 0]), np.array([False, False])),  # A "divides" into A and B
        *[follows] * (n - 4),
    ]
    params = RepairParams() if repair else dataclasses.replace(RepairParams(), fill_gaps=False)
    masks = []
    for t in range(n):
        mask = np.zeros(shape, np.uint16)
        mask[a] = 1
        if t != 2:
            mask[b] = 2
        masks.append(mask)
    out, tracks = _linked(steps, masks, params)
    if not repair:
        assert sum(t.parent != 0 for t in tracks) == 2  # the false division
        return
    assert tracks == [Track(1, 0, n - 1, 0), Track(2, 0, n - 1, 0)]
    assert all(np.array_equal(m == 1, a) for m in out)  # A: one cell, one label throughout
    assert (out[2][b] == 2).mean() > 0.9  # B filled in where it was missed


def _entering_beside(sister_radius: int) -> list[np.ndarray]:
    """Cell A (radius 10) near the right border; from frame 3 on, A is replaced by a cell of
    `sister_radius` and B comes in at the border beside it, a sliver first, then further
    in (label 1: A or the cell in its place, 2: B)."""
    shape, n = (64, 96), 7
    masks = []
    for t in range(n):
        mask = np.zeros(shape, np.uint16)
        mask[_disc(shape, (20, 80), 10 if t < 3 else sister_radius)] = 1
        if t >= 3:  # B: 4 px of it in view in frame 3, then 2 px more a frame
            width = 4 + 2 * (t - 3)
            mask[36:45, 96 - width :] = 2
        masks.append(mask)
    return masks


@pytest.mark.parametrize("repair", [True, False])
def test_a_cell_entering_the_field_is_not_taken_for_a_daughter(repair):
    """B comes into view at the border beside A (36 px against A's 317), and the solver
    makes it A's daughter, A's track going on as the other. The repair writes A as one
    track and B as a track of its own; switched off, the false division stays."""
    masks = _entering_beside(10)
    divides = PairSolution(np.array([0, 0]), np.array([False, False]))
    follows = [PairSolution(np.array([0]), np.array([False]))]
    both = [PairSolution(np.array([0, 1]), np.array([False, False]))]
    steps = [None, *follows * 2, divides, *both * 3]
    params = RepairParams() if repair else dataclasses.replace(RepairParams(), border_entries=False)
    out, tracks = _linked(steps, masks, params)
    if not repair:
        assert sum(t.parent != 0 for t in tracks) == 2
        return
    assert all(t.parent == 0 for t in tracks) and len(tracks) == 2, tracks
    assert len({int(v) for m in out for v in np.unique(m[masks[0] == 1])} - {0}) == 1


def test_a_division_at_the_border_with_a_daughter_half_outside_survives():
    """A divides at the border: one daughter is half her size (radius 7), the other shows
    only a sliver. The sister is a daughter, not the mother, so the division stays."""
    masks = _entering_beside(7)
    divides = PairSolution(np.array([0, 0]), np.array([False, False]))
    follows = [PairSolution(np.array([0]), np.array([False]))]
    both = [PairSolution(np.array([0, 1]), np.array([False, False]))]
    _, tracks = _linked([None, *follows * 2, divides, *both * 3], masks, RepairParams())
    assert sum(t.parent != 0 for t in tracks) == 2, tracks


def _linked(steps: list, masks: list[np.ndarray], params: RepairParams) -> tuple[list, list]:
    """The repaired masks and tracks of `masks` (label k = the frame's k-th cell) linked by
    the solver's `steps` (one `PairSolution` per frame after the first)."""
    lineage = LineageBuilder()
    repairs = Repairs(lineage, params, n_frames=len(masks))
    labels: dict[int, np.ndarray] = {}
    out = []
    for t, (solution, mask) in enumerate(zip(steps, masks, strict=True)):
        if t == 0:
            labels[0] = lineage.start(0, int(mask.max()))
        else:
            prev2 = labels.get(t - 2, np.zeros(0, np.int64))
            labels[t] = lineage.advance(t, solution, labels[t - 1], prev2)
        out += repairs.push(np.r_[0, labels[t]].astype(np.uint16)[mask])
    out += repairs.finish()
    return out, repairs.tracks()


def test_a_faint_cell_cut_into_small_pieces_for_a_frame_stays_one_track():
    """A faint cell cut in frame 3 into two pieces that add up to a third of it (our
    segmenter at signal/noise 1): the solver divides it, and the pieces, one object again
    the frame after, are joined although they are far below `cut_area` of the cell."""
    shape, n = (64, 64), 7
    cell = _disc(shape, (32, 32), 14)
    left, right = _disc(shape, (32, 26), 5), _disc(shape, (32, 38), 5)
    masks = [cell.astype(np.uint16) for _ in range(n)]
    masks[3] = left.astype(np.uint16) + 2 * right.astype(np.uint16)
    follows = PairSolution(np.array([0]), np.array([False]))
    divides = PairSolution(np.array([0, 0]), np.array([False, False]))
    steps = [None, follows, follows, divides, follows, follows, follows]
    out, tracks = _linked(steps, masks, RepairParams())
    assert tracks == [Track(1, 0, n - 1, 0)]
    assert set(np.unique(out[3])) == {0, 1}
    # the pieces are a third of the cell: the old area test kept the division
    assert (left.sum() + right.sum()) < RepairParams().cut_area * cell.sum()
    _, off = _linked(steps, masks, OFF)
    assert sum(t.parent != 0 for t in off) == 2


@pytest.mark.parametrize("radius", [12, 7], ids=["as large", "small"])
def test_two_touching_cells_are_not_taken_for_a_cut_mother(radius):
    """Cell B comes in touching A along a long border, and the solver makes it A's
    daughter; the frame after, the two are apart. As large as A, their union is twice A; a
    small B is unlike a piece of a cut A: neither is A cut in two before she divides, so
    frame 3 keeps both cells (the early-division delay would have written them as one)."""
    shape, n = (64, 96), 7
    a = _disc(shape, (32, 30), 12)
    masks = []
    for t in range(n):
        mask = np.zeros(shape, np.uint16)
        mask[a] = 1
        if t >= 3:  # B: touching A's right side in frame 3, further right after
            centre = 42 + radius - 6 if t == 3 else 62 + t
            mask[_disc(shape, (32, centre), radius) & ~a] = 2
        masks.append(mask)
    follows = PairSolution(np.array([0]), np.array([False]))
    both = PairSolution(np.array([0, 1]), np.array([False, False]))
    divides = PairSolution(np.array([0, 0]), np.array([False, False]))
    out, _ = _linked([None, follows, follows, divides, both, both, both], masks, RepairParams())
    assert len(np.unique(out[3][masks[3] == 1])) == 1
    assert len(np.unique(out[3][masks[3] == 2])) == 1
    assert out[3][masks[3] == 1][0] != out[3][masks[3] == 2][0]


def test_a_cell_cut_in_the_first_frame_is_one_cell_from_the_start():
    """The two pieces of a cell cut in frame 0: the solver continues one of them, the other
    ends there. The piece joins the cell, so its track is whole from the first frame
    (switched off: a one-frame track beside it, the cell's track half a cell in frame 0)."""
    shape, n = (64, 64), 6
    cell = _disc(shape, (32, 32), 14)
    left = cell & (np.arange(64)[None, :] < 32)
    first = np.where(left, 1, np.where(cell, 2, 0)).astype(np.uint16)
    masks = [first] + [cell.astype(np.uint16)] * (n - 1)
    steps = [None, PairSolution(np.array([1]), np.array([False]))]
    steps += [PairSolution(np.array([0]), np.array([False]))] * (n - 2)
    out, tracks = _linked(steps, masks, RepairParams())
    assert len(tracks) == 1 and (tracks[0].begin, tracks[0].end) == (0, n - 1)
    assert set(np.unique(out[0][cell])) == {tracks[0].label}
    _, off = _linked(steps, masks, OFF)
    assert len(off) == 2


def test_a_cell_filled_over_a_missed_frame_and_later_cut_stays_one_track():
    """A cell missed in frame 2 (bridged by a gap link and filled in) is cut in frame 5:
    its track goes on as one piece and ends, the other piece goes on as a new track. The
    two are one track although the cell's track was already two joined by the fill."""
    shape, n = (64, 96), 9
    cell = _disc(shape, (32, 40), 14)
    left = cell & (np.arange(96)[None, :] < 40)
    masks, steps = [], []
    for t in range(n):
        if t == 2:
            masks.append(np.zeros(shape, np.uint16))
            steps.append(PairSolution(np.zeros(0, np.int64), np.zeros(0, bool)))
        elif t == 5:  # cut: piece 1 continues the cell, piece 2 comes without a parent
            masks.append(np.where(left, 1, np.where(cell, 2, 0)).astype(np.uint16))
            steps.append(PairSolution(np.array([0, -1]), np.array([False, False])))
        else:
            masks.append(cell.astype(np.uint16))
            gap = t == 3  # a gap link from frame 1
            steps.append(
                None if t == 0
                else PairSolution(np.array([1]), np.array([False])) if t == 6  # from piece 2
                else PairSolution(np.array([0]), np.array([gap]))
            )  # fmt: skip
    out, tracks = _linked(steps, masks, RepairParams())
    assert len(tracks) == 1 and (tracks[0].begin, tracks[0].end) == (0, n - 1), tracks
    assert set(np.unique(out[5][cell])) == {tracks[0].label}  # the pieces are one cell
    assert (out[2][cell] == tracks[0].label).mean() > 0.8  # the missed frame filled in
    _, off = _linked(steps, masks, OFF)
    assert len(off) == 3  # before the gap, after it, the second piece's


@pytest.mark.parametrize(
    ("radii", "divides"),
    [
        ((12, 12, 12, 12, 12, 12), False),  # the same cell cut in two in the last frame
        ((14, 14, 14, 13, 12, 14), True),  # a mother rounding up, daughters 1.36 times her
        ((7, 8, 9, 10, 11, 13), False),  # a cell entering the field, cut as it grows
    ],
    ids=["cut", "division", "growing cut"],
)
def test_two_halves_born_joined_in_the_last_frame_are_a_cut_unless_they_outgrow_her(radii, divides):
    """In the last frame persistence cannot be seen: two halves joined by a long border
    are the mother's pieces when they add up to her (grown by her last growth), and her
    daughters when they add up to more (the simulator's 3D daughters: 1.38 times a mother
    who shrank before dividing)."""
    shape, n = (64, 64), len(radii)
    masks = [_disc(shape, (32, 32), r).astype(np.uint16) for r in radii]
    last = _disc(shape, (32, 32), radii[-1])
    masks[-1] = np.where(last & (np.arange(64)[None, :] < 32), 1, np.where(last, 2, 0))
    masks[-1] = masks[-1].astype(np.uint16)
    follows = PairSolution(np.array([0]), np.array([False]))
    steps = [None] + [follows] * (n - 2) + [PairSolution(np.array([0, 0]), np.array([False] * 2))]
    out, tracks = _linked(steps, masks, RepairParams())
    if divides:
        assert sorted((t.begin, t.end, t.parent) for t in tracks) == [
            (0, n - 2, 0), (n - 1, n - 1, 1), (n - 1, n - 1, 1)
        ]  # fmt: skip
    else:
        assert tracks == [Track(1, 0, n - 1, 0)]
        assert set(np.unique(out[-1])) == {0, 1}


def test_a_shrinking_cell_missed_beside_a_neighbour_is_not_taken_for_its_daughter():
    """As above, for a cell that shrinks frame by frame (one leaving the field): when it
    comes back after the missed frame it is less than 0.6 of its last size, but what its
    shrinking predicts; it continues its own track and its neighbour does not divide."""
    shape, n = (64, 96), 7
    a = _disc(shape, (32, 30), 12)
    radii = {0: 14, 1: 12, 3: 8, 4: 8, 5: 8, 6: 8}  # missed in frame 2
    follows = PairSolution(np.array([0, 1]), np.array([False, False]))
    steps = [
        None,
        follows,
        PairSolution(np.array([0]), np.array([False])),  # B missed: A only
        PairSolution(np.array([0, 0]), np.array([False, False])),  # A "divides" into A, B
        *[follows] * (n - 4),
    ]
    masks = []
    for t in range(n):
        mask = np.zeros(shape, np.uint16)
        mask[a] = 1
        if t in radii:
            mask[_disc(shape, (32, 64), radii[t])] = 2
        masks.append(mask)
    assert (masks[3] == 2).sum() < 0.6 * (masks[1] == 2).sum()  # smaller than PAIR_SHARE
    out, tracks = _linked(steps, masks, RepairParams())
    assert tracks == [Track(1, 0, n - 1, 0), Track(2, 0, n - 1, 0)]
    assert (out[2] == 2).any()  # filled in where it was missed
