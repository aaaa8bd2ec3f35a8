"""Tracking models trained end to end on simulated data, scored by the CTC measures.

The training commands run as a user runs them (`gnntrack train-embedding`, `gnntrack
train-tracker`); the models then track a sequence they never saw, with its GT masks, and
the result is scored by py-ctcmetrics. Tiny models and few iterations: the thresholds are
what such models reach, well under the targets of the shipped ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from inference.cli import main
from inference.ctc_rules import is_valid, validate_result
from inference.measures import evaluate
from training.simulator import get_preset, simulate

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def _train_and_track(root: Path, train: Path, test: Path, extra: list[str]) -> dict:
    """Train an embedding, then a tracker (with the `extra` train-tracker options), and
    track the GT masks of `test`: the tracker's config and the CTC scores."""
    params = root / "params"
    _invoke(
        [
            "train-embedding",
            str(train),
            "--model",
            str(params),
            "--iterations",
            "120",
            "--crop-size",
            "24",
        ]
    )
    _invoke(
        [
            "train-tracker",
            str(train),
            "--model",
            str(params),
            "--epochs",
            "8",
            "--blocks",
            "2",
            *extra,
        ]
    )
    config = json.loads((params / "tracker/config.json").read_text())
    out = root / "res"
    _invoke(
        [
            "track",
            "--images",
            str(test / "01"),
            "--masks",
            str(test / "01_GT/TRA"),
            "--model",
            str(params),
            "--out",
            str(out),
        ]
    )
    assert is_valid(validate_result(out))
    scores = evaluate(out, test / "01_GT", ["TRA", "DET", "LNK", "BC(0)", "CT"])
    return {"config": config, **scores}


def test_2d_models_track_an_unseen_sequence(tmp_path):
    preset = get_preset("Fluo-N2DH-SIM+")
    train = tmp_path / "train"
    test = tmp_path / "test"
    simulate(train, preset.with_options(frames=40, size=(256, 256), cells=20), seed=1)
    simulate(test, preset.with_options(frames=30, size=(192, 192), cells=14), seed=4)
    result = _train_and_track(tmp_path, train, test, [])
    validation = result["config"]["validation"]
    assert validation["edge_accuracy"] >= 0.97
    assert result["config"]["embedding"]["sha256"]
    # A model trained for seconds: its scores move with the CPU's floating-point kernels
    # (one machine: DET 1.0, BC(0) 0.8, CT 0.71; another: 0.995, 0.5, 0.68, where the
    # repairs drop a two-frame daughter whose division the model missed). The bounds leave
    # that margin and still fail a model that did not learn to link.
    assert result["DET"] >= 0.99
    assert result["TRA"] >= 0.98 and result["LNK"] >= 0.97
    assert result["BC(0)"] >= 0.5  # 3 divisions in the test sequence: one found at least
    assert result["CT"] >= 0.65


def test_3d_models_track_an_unseen_sequence(tmp_path):
    preset = get_preset("Fluo-N3DH-CE")
    train = tmp_path / "train"
    test = tmp_path / "test"
    simulate(train, preset.with_options(frames=30, size=(12, 112, 112), cells=14), seed=1)
    simulate(test, preset.with_options(frames=16, size=(12, 80, 80), cells=8), seed=2)
    # the simulator's CE voxels are 8 px deep: the tracker must measure distances so; it
    # also learns from a copy of its training frames with injected segmentation errors
    extra = ["--z-scale", str(preset.z_scale), "--errors", "0.05"]
    result = _train_and_track(tmp_path, train, test, extra)
    assert result["config"]["graph"]["spacing"] == [preset.z_scale, 1.0, 1.0]
    training = result["config"]["training"]
    assert training["errors"] == [0.05]
    assert training["training_frames"] == 2 * (30 - 6)  # 30 frames, the last 6 validate
    assert result["DET"] == 1.0  # GT masks; the links are what is measured:
    assert result["TRA"] >= 0.99 and result["LNK"] >= 0.97  # measured 0.998, 0.983
    assert result["CT"] >= 0.6  # measured 0.667 (no division in so small a field)


@pytest.mark.parametrize("rates", ["0.9", "0.05,x"])
def test_bad_error_rates_are_refused_before_training(tmp_path, rates):
    result = CliRunner().invoke(
        main, ["train-tracker", str(tmp_path), "--model", str(tmp_path / "m"), "--errors", rates]
    )
    assert result.exit_code == 2 and "rates" in result.output, result.output
    assert not (tmp_path / "m").exists()


def test_a_tracker_trained_with_candidate_cells_learns_from_merged_copies(tmp_path):
    """`--unions` with `--errors`: each damaged copy is seen as segmented and merged (its
    candidates labelled, training/tracker/candidate_labels.py), and the model's solver
    offers candidate cells; it links a sequence it never saw."""
    preset = get_preset("Fluo-N2DH-SIM+")
    train, test = tmp_path / "train", tmp_path / "test"
    simulate(train, preset.with_options(frames=20, size=(160, 160), cells=10), seed=1)
    simulate(test, preset.with_options(frames=12, size=(160, 160), cells=8), seed=4)
    params = tmp_path / "params"
    _invoke(["train-tracker", str(train), "--model", str(params), "--epochs", "3",
             "--blocks", "2", "--no-embedding", "--errors", "0.1", "--unions"])  # fmt: skip
    config = json.loads((params / "tracker/config.json").read_text())
    assert config["solver"]["unions"] is True
    assert config["training"]["unions"] is True and config["training"]["errors"] == [0.1]
    # the clean frames, and the damaged copy as segmented and merged (last 4 validate)
    assert config["training"]["training_frames"] == 3 * (20 - 4)
    out = tmp_path / "res"
    _invoke(["track", "--images", str(test / "01"), "--masks", str(test / "01_GT/TRA"),
             "--model", str(params), "--out", str(out)])  # fmt: skip
    assert is_valid(validate_result(out))
    assert evaluate(out, test / "01_GT", ["DET"])["DET"] >= 0.99
