"""The main job: shipped models segment and track the embedded sample into a valid result."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from inference.cli import main
from inference.ctc_rules import validate_result
from inference.io import read_tracks
from inference.measures import evaluate

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "Sim-N2DH"
PARAMS = ROOT / "parameters" / "Fluo-N2DH-SIM+"


@pytest.mark.slow
def test_run_on_the_embedded_sample(tmp_path):
    res = tmp_path / "01_RES"
    args = ["run", str(SAMPLE), "01", "--model", str(PARAMS), "--out", str(res)]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert validate_result(res, images_dir=SAMPLE / "01") == []
    scores = evaluate(res, SAMPLE / "01_GT", metrics=["TRA", "DET", "SEG", "LNK", "BC(0)"])
    # Measured 0.949 / 0.955 / 0.853 with the shipped SIM+ models (trained on real data).
    assert scores["TRA"] > 0.9 and scores["DET"] > 0.9 and scores["SEG"] > 0.8, scores
    # and the lineage: LNK 0.909, BC(0) 0.889 (fused neighbours split by the solver)
    assert scores["LNK"] > 0.85 and scores["tp_div(0)"] >= 6 and scores["BC(0)"] > 0.5, scores
    tracks, truth = (
        read_tracks(res / "res_track.txt"),
        read_tracks(SAMPLE / "01_GT/TRA/man_track.txt"),
    )
    assert 0.75 * len(truth) <= len(tracks) <= 1.5 * len(truth)  # measured 34 for 36
