"""The division model (inference/models/division.py): what it measures of a division, how it
is stored, what the repairs do with its verdict, and its training command end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from inference.cells.division_features import FEATURES, division_features
from inference.cli import main as cli
from inference.ctc_rules import validate_result
from inference.errors import CTCError
from inference.io import Track
from inference.models.division import DivisionModel, DivisionScorer
from inference.models.folder import save_model_folder
from inference.models.tracker import Tracker
from inference.tracking.lineage import LineageBuilder
from inference.tracking.repair import RepairParams, Repairs
from inference.tracking.solve import PairSolution
from training.tracker.fit_division import DEFAULT_FEATURES

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "Sim-N2DH"
SIM = ROOT / "parameters" / "Fluo-N2DH-SIM+"
SHAPE = (64, 112)
DIVIDE = 4  # the frame the daughters appear in
FRAMES = 9


def _disc(mask: np.ndarray, centre: tuple[float, float], radius: float, value: int) -> None:
    yy, xx = np.indices(mask.shape)
    mask[(yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2] = value


def _frames() -> list[np.ndarray]:
    """Cell 1 (r 8) gets a persistent small neighbour (r 5, outside its mask) from DIVIDE
    on; cell 2 (r 8) divides then into two daughters (r 6) that came out of it and part."""
    frames = []
    for t in range(FRAMES):
        mask = np.zeros(SHAPE, np.int64)
        _disc(mask, (32, 20 + t), 8, 1)
        if t < DIVIDE:
            _disc(mask, (32, 80), 8, 2)
        else:
            _disc(mask, (32, 20 + t + 14), 5, 2)  # the neighbour: a "daughter" of cell 1
            apart = 6.5 + 2 * (t - DIVIDE)
            _disc(mask, (32 - apart, 80), 6, 3)
            _disc(mask, (32 + apart, 80), 6, 4)
        frames.append(mask)
    return frames


def _mask_at(frames: list[np.ndarray]):
    return lambda t: frames[t] if 0 <= t < len(frames) else None


def _model(threshold: float = 0.5) -> DivisionModel:
    """By hand: daughters of alike size that came out of the mother are mitoses."""
    scorer = DivisionScorer(len(FEATURES))
    with torch.no_grad():
        scorer.linear.weight.zero_()
        scorer.linear.weight[0, FEATURES.index("smaller_over_larger")] = 4.0
        scorer.linear.weight[0, FEATURES.index("worse_origin")] = 4.0
        scorer.linear.bias.fill_(-4.0)
    ones = np.ones(len(FEATURES), np.float32)
    return DivisionModel(scorer, 0 * ones, ones, threshold)


def test_features_tell_a_mitosis_from_a_neighbour_and_a_cut():
    frames = _frames()
    mitosis = division_features(_mask_at(frames), DIVIDE, 2, 3, 4)
    neighbour = division_features(_mask_at(frames), DIVIDE, 1, 1, 2)
    assert mitosis is not None and neighbour is not None
    f = dict(zip(FEATURES, mitosis, strict=True))
    g = dict(zip(FEATURES, neighbour, strict=True))
    assert f["smaller_over_larger"] == pytest.approx(1.0)
    assert g["smaller_over_larger"] == pytest.approx(81 / 197, rel=0.1)  # r 5 against r 8
    assert f["worse_origin"] > 0.3 and g["worse_origin"] == 0.0
    assert f["separation_growth"] > 1.5  # the daughters part
    assert f["contact"] == f["contact_later"] == 0.0 and f["mother_over_its_past"] == 1.0
    cut = np.zeros(SHAPE, np.int64)
    _disc(cut, (32, 40), 8, 1)
    cut[:, 40:][cut[:, 40:] == 1] = 2  # the same cell in two halves
    before = np.zeros(SHAPE, np.int64)
    _disc(before, (32, 40), 8, 1)
    halves = division_features(_mask_at([before, cut]), 1, 1, 1, 2)
    h = dict(zip(FEATURES, halves, strict=True))
    assert h["contact"] > 1.2  # a straight cut: about 2r over sqrt(half the area)
    assert h["contact_later"] == h["contact"]  # no later frame: the border at t
    assert h["daughters_over_mother"] == pytest.approx(1.0)
    assert division_features(_mask_at(frames), DIVIDE, 7, 3, 4) is None  # no such mother


def _repair(frames: list[np.ndarray], division: DivisionModel | None) -> list[Track]:
    """Frames through `Repairs` as the solver links them (cell 1 -> 1, 2; cell 2 -> 3, 4)."""
    lineage = LineageBuilder()
    repairs = Repairs(lineage, RepairParams(), FRAMES, division)
    labels: dict[int, np.ndarray] = {}
    out = []
    for t, mask in enumerate(frames):
        if t == 0:
            labels[0] = lineage.start(0, 2)
        else:
            source = [0, 1] if t < DIVIDE else [0, 0, 1, 1] if t == DIVIDE else [0, 1, 2, 3]
            solution = PairSolution(np.array(source), np.zeros(len(source), bool))
            labels[t] = lineage.advance(t, solution, labels[t - 1], labels.get(t - 2))
        lut = np.r_[0, labels[t]].astype(np.uint16)
        out += repairs.push(lut[mask])
    out += repairs.finish()
    assert len(out) == FRAMES
    return repairs.tracks()


def test_repairs_undo_the_division_the_model_rejects_and_keep_the_mitosis():
    frames = _frames()
    kept = _repair(frames, None)
    assert sum(t.parent > 0 for t in kept) == 4  # two divisions without the model
    tracks = _repair(frames, _model())
    parents = {t.label: t.parent for t in tracks}
    first = next(t for t in tracks if t.begin == 0 and t.end == FRAMES - 1)  # cell 1, whole
    assert parents[first.label] == 0
    neighbour = [t for t in tracks if t.begin == DIVIDE and t.parent == 0]
    assert len(neighbour) == 1  # a track of its own, no mother
    daughters = [t for t in tracks if t.parent]
    assert len(daughters) == 2 and len({t.parent for t in daughters}) == 1  # cell 2 divides
    off = _repair(frames, _model(threshold=0.0))  # nothing scores below 0
    assert sum(t.parent > 0 for t in off) == 4


def test_division_folder_round_trips_and_refuses_other_features(tmp_path):
    model = _model(0.3)
    folder = save_model_folder(
        tmp_path / "division", "division", model.config(), dict(model.scorer.state_dict())
    )
    loaded = DivisionModel.from_folder(folder)
    x = np.random.default_rng(0).normal(size=(5, len(FEATURES))).astype(np.float32)
    assert np.allclose(loaded.probability(x), model.probability(x))
    assert loaded.threshold == 0.3
    config = json.loads((folder / "config.json").read_text())
    config["features"] = list(FEATURES[:-1]) + ["something_else"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CTCError, match="refit it"):
        DivisionModel.from_folder(folder)


@pytest.mark.slow
def test_train_division_writes_a_model_the_tracker_loads_and_its_run_validates(tmp_path):
    model = tmp_path / "model"
    for part in ("tracker", "embedding"):
        shutil.copytree(SIM / part, model / part)
    assert Tracker.from_folder(model).division is None
    args = ["train-division", str(SAMPLE), "--model", str(model), "--rates", "0,0.15",
            "--seeds", "1"]  # fmt: skip
    run = CliRunner().invoke(cli, args)
    assert run.exit_code == 0, run.output
    config = json.loads((model / "division" / "config.json").read_text())
    assert config["features"] == list(DEFAULT_FEATURES)
    assert config["validation"]["true_divisions"] > 0 < config["validation"]["false_divisions"]
    tracker = Tracker.from_folder(model)
    assert tracker.division is not None
    out = tmp_path / "res"
    track = ["track", "--images", str(SAMPLE / "01"), "--masks", str(SAMPLE / "01_GT" / "TRA"),
             "--model", str(model), "--out", str(out)]  # fmt: skip
    done = CliRunner().invoke(cli, track)
    assert done.exit_code == 0, done.output
    assert validate_result(out, images_dir=SAMPLE / "01") == []
    again = CliRunner().invoke(cli, args)  # the folder exists: refused without --overwrite
    assert again.exit_code != 0 and "overwrite" in again.output
    odd = CliRunner().invoke(cli, [*args, "--overwrite", "--features", "contact,size"])
    assert odd.exit_code != 0 and "unknown division features ['size']" in odd.output
