"""CTC measures on crafted data: perfect results, a hand-scored imperfect one, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from ctc_metrics.scripts.evaluate import evaluate_sequence
from ctc_metrics.utils.representations import match as ctc_match

from inference.cli import main
from inference.errors import CTCError
from inference.io import Track, write_mask, write_result, write_tracks
from inference.measures import DEFAULT_METRICS, evaluate, match_labels, normalize_metrics

SHAPE = (24, 40)
#: Two generations, so that every measure is defined (CCA needs a full cell cycle):
#: 1 (0-1) -> 2, 3; 2 (2-3) -> 4, 5; 6 lives throughout. label -> (begin, end, parent, y, x)
LINEAGE = {
    1: (0, 1, 0, 2, 2),
    2: (2, 3, 1, 2, 2),
    3: (2, 5, 1, 10, 2),
    4: (4, 5, 2, 2, 2),
    5: (4, 5, 2, 2, 8),
    6: (0, 5, 0, 16, 30),
}
PY_CTC_METRICS = ["TRA", "DET", "SEG", "LNK", "OP_CTB", "OP_CSB"]
PY_CTC_METRICS += ["BC", "CT", "TF", "CCA", "BIO", "OP_CLB"]


def _masks(cells: dict, n: int = 6, depth: int | None = None, drop=()) -> list[np.ndarray]:
    """Frames with a 4x4 (x depth) square per living cell; `drop`: (label, t) left out."""
    frames = []
    for t in range(n):
        frame = np.zeros(((depth,) if depth else ()) + SHAPE, np.uint16)
        for label, (begin, end, _, y, x) in cells.items():
            if begin <= t <= end and (label, t) not in drop:
                frame[..., y : y + 4, x : x + 4] = label
        frames.append(frame)
    return frames


def _tracks(cells: dict) -> list[Track]:
    return [Track(label, b, e, p) for label, (b, e, p, _, _) in cells.items()]


def _gt(folder: Path, cells: dict, n: int = 6, depth: int | None = None, seg: bool = True) -> Path:
    (folder / "TRA").mkdir(parents=True)
    for t, mask in enumerate(_masks(cells, n, depth)):
        write_mask(folder / "TRA" / f"man_track{t:03d}.tif", mask)
        if seg:
            (folder / "SEG").mkdir(exist_ok=True)
            write_mask(folder / "SEG" / f"man_seg{t:03d}.tif", mask)
    write_tracks(folder / "TRA" / "man_track.txt", _tracks(cells))
    return folder


def _res(folder: Path, cells: dict, n: int = 6, depth: int | None = None, drop=()) -> Path:
    return write_result(folder, _masks(cells, n, depth, drop), _tracks(cells), n_frames=n)


def _assert_perfect(scores: dict) -> None:
    assert set(DEFAULT_METRICS) <= set(scores)
    for name in DEFAULT_METRICS:
        assert scores[name] == pytest.approx(1.0), name
    assert scores["AOGM"] == 0 and scores["gt_divisions"] == 2


def test_gt_as_result_is_perfect_2d(tmp_path: Path) -> None:
    gt, res = _gt(tmp_path / "01_GT", LINEAGE), _res(tmp_path / "01_RES", LINEAGE)
    _assert_perfect(evaluate(res, gt))


def test_gt_as_result_is_perfect_3d_with_slice_seg(tmp_path: Path) -> None:
    gt = _gt(tmp_path / "01_GT", LINEAGE, depth=3, seg=False)
    (gt / "SEG").mkdir()
    for t, mask in enumerate(_masks(LINEAGE, depth=3)):  # 3D SEG GT as annotated slices
        write_mask(gt / "SEG" / f"man_seg_{t:03d}_001.tif", mask[1])
    res = _res(tmp_path / "01_RES", LINEAGE, depth=3)
    _assert_perfect(evaluate(res, gt, threads=2))


#: The GT for the hand-scored case: A=1 (0-2) divides into B=2, C=3 (3-5); D=4, E=5 live 0-5.
HAND_GT = {
    1: (0, 2, 0, 2, 2),
    2: (3, 5, 1, 2, 2),
    3: (3, 5, 1, 10, 2),
    4: (0, 5, 0, 2, 12),
    5: (0, 5, 0, 2, 22),
}
#: The result: C missed in frame 5; D's track broken into 4 (0-2) and 5 (3-5) without a link;
#: E (6, 0-2) falsely divides into 7 (its true continuation) and 8, a one-frame false object.
HAND_RES = {
    1: (0, 2, 0, 2, 2),
    2: (3, 5, 1, 2, 2),
    3: (3, 4, 1, 10, 2),
    4: (0, 2, 0, 2, 12),
    5: (3, 5, 0, 2, 12),
    6: (0, 2, 0, 2, 22),
    7: (3, 5, 6, 2, 22),
    8: (3, 3, 6, 16, 30),
}


def test_broken_link_missed_cell_false_division_scored_by_hand(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    gt, res = _gt(tmp_path / "01_GT", HAND_GT), _res(tmp_path / "01_RES", HAND_RES)
    scores = evaluate(res, gt)
    # GT graph: 3+3+3+6+6 = 21 nodes; 2+2+2+5+5 track links + 2 division links = 18 edges.
    aogm_0 = 10 * 21 + 1.5 * 18  # 237: building the GT from scratch
    # FN: C at frame 5 (10). FP: label 8 (1; its edges go with it, free).
    # EA: C4->C5 (the missed node's edge) and D2->D3 (the broken link): 2 x 1.5.
    # EC: 6->7 is a division link where the GT has a track link (1). ED, NS: none.
    aogm = 10 * 1 + 1 * 1 + 1.5 * 2 + 1 * 1
    assert (scores["AOGM_FN"], scores["AOGM_FP"], scores["AOGM_NS"]) == (1, 1, 0)
    assert (scores["AOGM_EA"], scores["AOGM_ED"], scores["AOGM_EC"]) == (2, 0, 1)
    assert scores["AOGM"] == aogm == 15 and scores["AOGM_0"] == aogm_0
    assert scores["TRA"] == pytest.approx(1 - 15 / 237)
    assert scores["DET"] == pytest.approx(1 - (10 * 1 + 1 * 1) / (10 * 21))
    assert scores["LNK"] == pytest.approx(1 - (1.5 * 2 + 1) / (1.5 * 18))
    # Divisions: GT 1; result 2, one right (TP) and one false (FP): F1 = 2/3 at every i.
    for i in range(4):
        assert (scores[f"tp_div({i})"], scores[f"fp_div({i})"], scores[f"fn_div({i})"]) == (1, 1, 0)
        assert scores[f"BC({i})"] == pytest.approx(2 / 3)

    reference = evaluate_sequence(str(res), str(gt), metrics=list(PY_CTC_METRICS), threads=1)
    capsys.readouterr()
    for name, value in scores.items():
        assert value == pytest.approx(reference[name]), name


def test_extra_metrics_match_py_ctcmetrics(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gt, res = _gt(tmp_path / "01_GT", HAND_GT), _res(tmp_path / "01_RES", HAND_RES)
    scores = evaluate(res, gt, metrics=["HOTA", "idf1", "MOTA"])
    reference = evaluate_sequence(str(res), str(gt), metrics=["HOTA", "IDF1", "MOTA"], threads=1)
    capsys.readouterr()
    assert {"HOTA", "IDF1", "MOTA"} <= set(scores)
    for name, value in scores.items():
        assert value == pytest.approx(reference[name]), name


def test_gt_without_seg(tmp_path: Path) -> None:
    gt = _gt(tmp_path / "01_GT", LINEAGE, seg=False)
    res = _res(tmp_path / "01_RES", LINEAGE)
    scores = evaluate(res, gt)
    assert scores["SEG"] is None and scores["OP_CTB"] is None and scores["OP_CSB"] is None
    assert scores["TRA"] == 1.0
    with pytest.raises(CTCError, match="SEG folder"):
        evaluate(res, gt, metrics=["SEG"])


def test_selected_metrics_only(tmp_path: Path) -> None:
    gt, res = _gt(tmp_path / "01_GT", HAND_GT), _res(tmp_path / "01_RES", HAND_RES)
    assert list(evaluate(res, gt, metrics=["lnk", "BC(1)"])) == [
        "LNK",
        "BC(1)",
        "gt_divisions",
        "tp_div(1)",
        "fp_div(1)",
        "fn_div(1)",
    ]
    assert list(evaluate(res, gt, metrics=["SEG"])) == ["SEG"]


def test_metric_names() -> None:
    assert normalize_metrics(["tra,det", "bc(2)", "op_clb"]) == [
        "TRA",
        "DET",
        "BC(2)",
        "OP_CLB(0)",
        "OP_CLB(1)",
        "OP_CLB(2)",
        "OP_CLB(3)",
    ]
    with pytest.raises(CTCError, match="unknown measure 'TRAA'"):
        normalize_metrics(["TRAA"])


def test_bad_input(tmp_path: Path) -> None:
    gt, res = _gt(tmp_path / "01_GT", LINEAGE), _res(tmp_path / "01_RES", LINEAGE)
    with pytest.raises(CTCError, match="result folder not found"):
        evaluate(tmp_path / "nope", gt)
    with pytest.raises(CTCError, match="ground-truth folder not found"):
        evaluate(res, tmp_path / "nope")
    with pytest.raises(CTCError, match="man_track.txt"):
        evaluate(res, res)
    short = write_result(tmp_path / "short", _masks(LINEAGE, 4), _tracks(LINEAGE), n_frames=4)
    with pytest.raises(CTCError, match="4 mask frames, but the ground truth has 6"):
        evaluate(short, gt)
    (res / "res_track.txt").write_text("1 0 1 0\n")
    with pytest.raises(CTCError, match=r"invalid result, 5 violations: \[undeclared\]"):
        evaluate(res, gt)


def test_shape_mismatch(tmp_path: Path) -> None:
    gt = _gt(tmp_path / "01_GT", LINEAGE)
    masks = [np.pad(m, ((0, 1), (0, 0))) for m in _masks(LINEAGE)]
    res = write_result(tmp_path / "01_RES", masks, _tracks(LINEAGE), n_frames=6)
    with pytest.raises(CTCError, match="differs from the ground truth"):
        evaluate(res, gt)


def test_matching_equals_py_ctcmetrics(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for trial in range(5):
        ref = np.zeros((40, 50), np.uint16)
        comp = np.zeros((40, 50), np.uint16)
        for label in range(1, 12):
            y, x = rng.integers(0, 34, 2)
            ref[y : y + rng.integers(2, 7), x : x + rng.integers(2, 7)] = label
            y, x = y + rng.integers(-2, 3), x + rng.integers(-2, 3)
            comp[max(y, 0) : y + 5, max(x, 0) : x + 5] = 100 + label * 3
        tifffile.imwrite(tmp_path / f"r{trial}.tif", ref)
        tifffile.imwrite(tmp_path / f"c{trial}.tif", comp)
        expected = ctc_match(str(tmp_path / f"r{trial}.tif"), str(tmp_path / f"c{trial}.tif"))
        assert match_labels(ref, comp) == expected


def test_matching_survives_large_labels() -> None:
    # py-ctcmetrics adds the GT's largest label to the result in uint16: 40000 + 30000 wraps
    # and this pair goes unmatched there. Ours matches it.
    ref = np.zeros((8, 8), np.uint16)
    comp = np.zeros((8, 8), np.uint16)
    ref[:4, :4], comp[:4, :4] = 40000, 30000
    assert match_labels(ref, comp) == ([40000], [30000], [40000], [30000], [1.0])


def test_cli_json_is_one_object(tmp_path: Path) -> None:
    gt, res = _gt(tmp_path / "01_GT", HAND_GT), _res(tmp_path / "01_RES", HAND_RES)
    run = CliRunner().invoke(main, ["evaluate", str(res), str(gt), "--json"])
    assert run.exit_code == 0, run.output
    scores = json.loads(run.stdout)
    assert isinstance(scores, dict) and scores["TRA"] == pytest.approx(1 - 15 / 237)
    assert scores["CCA"] is None  # no complete cell cycle in this GT: undefined, null
    run = CliRunner().invoke(main, ["evaluate", str(res), str(gt), "--json", "-m", "DET"])
    assert json.loads(run.stdout) == {"DET": pytest.approx(199 / 210)}


def test_cli_table_and_errors(tmp_path: Path) -> None:
    gt, res = _gt(tmp_path / "01_GT", HAND_GT), _res(tmp_path / "01_RES", HAND_RES)
    run = CliRunner().invoke(main, ["evaluate", str(res), str(gt), "-m", "TRA,CCA"])
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["TRA", f"{1 - 15 / 237:.6f}"]
    assert lines[1].split() == ["CCA", "n/a"]
    assert len({len(line) for line in lines}) == 1  # aligned columns
    assert "AOGM_FN" not in run.stdout
    run = CliRunner().invoke(main, ["evaluate", str(res), str(gt), "-m", "TRA", "--details"])
    counts = dict(line.split() for line in run.stdout.splitlines())
    assert counts["AOGM_FN"] == "1" and counts["AOGM"] == "15.000000"
    run = CliRunner().invoke(main, ["evaluate", str(res), str(gt), "-m", "nope"])
    assert run.exit_code == 2 and "unknown measure" in run.output
    run = CliRunner().invoke(main, ["evaluate", str(tmp_path / "x"), str(gt)])
    assert run.exit_code == 2


def test_empty_result_is_a_clear_error(tmp_path: Path) -> None:
    gt = _gt(tmp_path / "01_GT", HAND_GT)
    res = write_result(tmp_path / "01_RES", [np.zeros(SHAPE, np.uint16)] * 6, [], n_frames=6)
    with pytest.raises(CTCError, match="no cell in any frame"):
        evaluate(res, gt)
