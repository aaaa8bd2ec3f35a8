"""The CTC result rules, one by one, on small crafted results (2D and one 3D)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from inference.cli import main
from inference.ctc_rules import RULES, Violation, count_divisions, is_valid, ranges, validate_result
from inference.errors import CTCError
from inference.io import Track

#: A valid lineage: 1 (frames 0-1) divides into 2 and 3 (frames 2-3); 4 lives 0-3.
LINES = "1 0 1 0\n2 2 3 1\n3 2 3 1\n4 0 3 0\n"
BOXES = {1: (1, 1), 2: (1, 5), 3: (5, 1), 4: (5, 7)}  # top-left corner of each 2x2 cell


def _frames(n: int = 4, shape: tuple[int, ...] = (10, 12)) -> list[np.ndarray]:
    spans = {1: (0, 1), 2: (2, 3), 3: (2, 3), 4: (0, 3)}
    frames = [np.zeros(shape, np.uint16) for _ in range(n)]
    for label, (begin, end) in spans.items():
        y, x = BOXES[label]
        for t in range(begin, min(end, n - 1) + 1):
            frames[t][..., y : y + 2, x : x + 2] = label
    return frames


def _result(folder: Path, frames: list[np.ndarray], lines: str | None = LINES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        tifffile.imwrite(
            folder / f"mask{t:03d}.tif", frame, compression="lzw", photometric="minisblack"
        )
    if lines is not None:
        (folder / "res_track.txt").write_text(lines)
    return folder


def _rules(violations: list[Violation]) -> list[tuple[str, int | None, int | None]]:
    return [(v.rule, v.frame, v.label) for v in violations]


def test_valid_result(tmp_path: Path) -> None:
    assert validate_result(_result(tmp_path, _frames()), warnings=True) == []


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CTCError, match="not found"):
        validate_result(tmp_path / "nope")


def test_track_file_missing(tmp_path: Path) -> None:
    assert _rules(validate_result(_result(tmp_path, _frames(), None))) == [
        ("track-file", None, None)
    ]


def test_bad_line_is_reported_and_the_rest_still_checked(tmp_path: Path) -> None:
    found = validate_result(_result(tmp_path, _frames(), LINES + "5 0 x 0\n4 1\n"))
    assert _rules(found) == [("track-line", None, None)] * 2
    assert "line 5" in found[0].message and "line 6" in found[1].message


def test_duplicate_label(tmp_path: Path) -> None:
    found = validate_result(_result(tmp_path, _frames(), LINES + "4 0 3 0\n"))
    assert _rules(found) == [("duplicate-label", None, 4)]
    assert "lines 4, 5" in found[0].message


@pytest.mark.parametrize(
    ("line", "frame"), [("4 3 0 0", 3), ("4 0 7 0", 7)], ids=["end-before-begin", "past-end"]
)
def test_track_range(tmp_path: Path, line: str, frame: int) -> None:
    found = validate_result(_result(tmp_path, _frames(), LINES.replace("4 0 3 0", line)))
    assert ("track-range", frame, 4) in _rules(found)


def test_parent_self(tmp_path: Path) -> None:
    found = validate_result(_result(tmp_path, _frames(), LINES.replace("4 0 3 0", "4 0 3 4")))
    assert _rules(found) == [("parent-self", 0, 4)]


def test_parent_missing(tmp_path: Path) -> None:
    found = validate_result(_result(tmp_path, _frames(), LINES.replace("2 2 3 1", "2 2 3 9")))
    assert _rules(found) == [("parent-missing", 2, 2)]


def test_parent_order(tmp_path: Path) -> None:
    frames = _frames()
    frames[1][5:7, 1:3] = 3  # daughter 3 now starts while its mother 1 still lives
    found = validate_result(_result(tmp_path, frames, LINES.replace("3 2 3 1", "3 1 3 1")))
    assert _rules(found) == [("parent-order", 1, 3)]
    assert "parent 1 ends at 1" in found[0].message


def test_gap_between_parent_and_child_is_allowed(tmp_path: Path) -> None:
    frames = _frames(6)
    for frame in frames[2:4]:  # daughters appear 2 frames after the mother ends
        frame[frame == 2] = 0
        frame[frame == 3] = 0
    for frame in frames[4:]:
        frame[1:3, 5:7], frame[5:7, 1:3] = 2, 3
    lines = "1 0 1 0\n2 4 5 1\n3 4 5 1\n4 0 3 0\n"
    frames[4][5:7, 7:9] = frames[5][5:7, 7:9] = 0
    assert validate_result(_result(tmp_path, frames, lines)) == []


def test_stray_tiff_and_corrupt_mask(tmp_path: Path) -> None:
    folder = _result(tmp_path / "a", _frames())
    tifffile.imwrite(folder / "overlay.tif", np.zeros((10, 12), np.uint16))
    found = validate_result(folder)
    assert _rules(found) == [("mask-files", None, None)] and "overlay.tif" in found[0].message

    folder = _result(tmp_path / "b", _frames())
    (folder / "mask002.tif").write_bytes(b"garbage")
    found = validate_result(folder)
    assert _rules(found) == [("mask-files", 2, None)]  # frame 2 skipped, nothing cascades


def test_frame_missing(tmp_path: Path) -> None:
    folder = _result(tmp_path, _frames())
    (folder / "mask001.tif").unlink()
    found = validate_result(folder)
    assert _rules(found) == [("frame-missing", 1, None)] and "frame" in found[0].message


def test_frame_count_and_shape_against_images(tmp_path: Path) -> None:
    images = tmp_path / "01"
    images.mkdir()
    for t in range(5):
        tifffile.imwrite(images / f"t{t:03d}.tif", np.zeros((10, 13), np.uint8))
    found = validate_result(_result(tmp_path / "01_RES", _frames()), images_dir=images)
    assert _rules(found) == [("frame-count", None, None)] + [("shape", t, None) for t in range(4)]


def test_shape_change_between_frames(tmp_path: Path) -> None:
    frames = _frames()
    frames[3] = np.pad(frames[3], ((0, 1), (0, 0)))
    assert _rules(validate_result(_result(tmp_path, frames))) == [("shape", 3, None)]


@pytest.mark.parametrize("dtype", ["uint8", "int32", "uint32"])
def test_integer_dtype_other_than_uint16(tmp_path: Path, dtype: str) -> None:
    frames = _frames()
    frames[2] = frames[2].astype(dtype)
    found = validate_result(_result(tmp_path, frames))
    assert _rules(found) == [("dtype", 2, None)] and dtype in found[0].message


def test_float_or_negative_mask_is_a_violation_not_a_crash(tmp_path: Path) -> None:
    frames = _frames()
    frames[1] = frames[1].astype(np.float32)
    frames[2] = frames[2].astype(np.int16) * -1
    found = validate_result(_result(tmp_path, frames))
    assert _rules(found) == [("dtype", 1, None), ("dtype", 2, None), ("dtype", 2, None)]
    assert "outside 0..65535" in found[2].message


def test_empty_frame(tmp_path: Path) -> None:
    frames = _frames()
    frames.append(np.zeros_like(frames[0]))
    folder = _result(tmp_path, frames)
    assert validate_result(folder) == []  # legitimate (every cell may have left), so valid
    found = validate_result(folder, warnings=True)
    assert _rules(found) == [("empty-frame", 4, None)]
    assert found[0].severity == "warning" and is_valid(found)


def test_undeclared_and_unused_labels(tmp_path: Path) -> None:
    frames = _frames()
    frames[2][8:10, 10:12] = 7
    found = validate_result(_result(tmp_path, frames, LINES + "8 0 1 0\n"))
    assert _rules(found) == [("undeclared", 2, 7), ("unused", 0, 8)]


def test_missing_frames_are_listed_compactly(tmp_path: Path) -> None:
    frames = _frames()
    frames[1][frames[1] == 4] = 0
    frames[2][frames[2] == 4] = 0
    found = validate_result(_result(tmp_path, frames))
    assert _rules(found) == [("missing", 1, 4)] and "frames 1-2" in found[0].message


def test_extra_frames(tmp_path: Path) -> None:
    frames = _frames()
    frames[3][1:3, 1:3] = 1  # the mother reappears after her division
    found = validate_result(_result(tmp_path, frames))
    assert _rules(found) == [("extra", 3, 1)]


def test_every_violation_is_reported(tmp_path: Path) -> None:
    frames = _frames()
    frames[3][1:3, 1:3] = 1
    frames[0][8:10, 10:12] = 9
    lines = LINES.replace("2 2 3 1", "2 2 3 2") + "4 0 3 0\n6 0 0 0\n"
    found = validate_result(_result(tmp_path, frames, lines))
    assert set(_rules(found)) == {
        ("duplicate-label", None, 4),
        ("parent-self", 2, 2),
        ("extra", 3, 1),
        ("undeclared", 0, 9),
        ("unused", 0, 6),
    }


def test_disconnected_label_is_a_warning(tmp_path: Path) -> None:
    frames = _frames()
    frames[0][3, 3] = 1  # touches the 2x2 cell of label 1 diagonally: one piece (8-connected)
    frames[1][8, 10] = 4  # far from the rest of label 4: a second piece
    folder = _result(tmp_path, frames)
    assert validate_result(folder) == []
    found = validate_result(folder, warnings=True)
    assert _rules(found) == [("disconnected", 1, 4)]
    assert found[0].severity == "warning" and is_valid(found)
    assert str(found[0]).startswith("warning [disconnected] frame 1, label 4:")


def test_3d_result(tmp_path: Path) -> None:
    frames = _frames(shape=(3, 10, 12))
    assert validate_result(_result(tmp_path / "ok", frames), warnings=True) == []
    frames[1][1:, 5:7, 7:9] = 0  # label 4 only in plane z=0 of frame 1 ...
    frames[1][1, 7, 9] = 4  # ... plus a voxel touching it by a corner only: 26-connected
    frames[2][2, 9, 0] = 4  # a separate piece
    frames[3] = frames[3][0]  # a 2D frame among 3D ones
    found = validate_result(_result(tmp_path / "bad", frames), warnings=True)
    assert _rules(found) == [("shape", 3, None), ("disconnected", 2, 4)]


def test_violation_text_and_helpers() -> None:
    violation = Violation("missing", 3, 7, "declared 0-9 but absent from frames 3-4")
    assert str(violation) == "[missing] frame 3, label 7: declared 0-9 but absent from frames 3-4"
    assert str(Violation("track-file", None, None, "gone")) == "[track-file] gone"
    assert ranges([7, 1, 2, 3, 9, 10]) == "1-3, 7, 9-10"
    assert count_divisions([Track(1, 0, 1), Track(2, 2, 3, 1), Track(3, 2, 3, 1)]) == 1
    assert count_divisions([Track(1, 0, 1), Track(2, 2, 3, 1)]) == 0  # one child: no division
    assert set(RULES) >= {"disconnected", "parent-order", "missing", "extra"}


def test_cli_valid(tmp_path: Path) -> None:
    folder = _result(tmp_path, _frames())
    run = CliRunner().invoke(main, ["validate", str(folder)])
    assert run.exit_code == 0, run.output
    assert run.output == "valid: 4 frames, 4 tracks, 1 divisions\n"


def test_cli_invalid_lists_every_violation(tmp_path: Path) -> None:
    frames = _frames()
    frames[3][1:3, 1:3] = 1
    folder = _result(tmp_path, frames, LINES + "8 0 1 0\n")
    run = CliRunner().invoke(main, ["validate", str(folder)])
    assert run.exit_code == 1
    assert run.output.splitlines() == [
        "invalid: 2 violations",
        "[extra] frame 3, label 1: declared 0-1, also in frame 3",
        "[unused] frame 0, label 8: declared 0-1, never in the masks",
    ]


def test_cli_images_and_bad_folder(tmp_path: Path) -> None:
    images = tmp_path / "01"
    images.mkdir()
    for t in range(3):
        tifffile.imwrite(images / f"t{t:03d}.tif", np.zeros((10, 12), np.uint8))
    folder = _result(tmp_path / "01_RES", _frames())
    run = CliRunner().invoke(main, ["validate", str(folder), "--images", str(images)])
    assert run.exit_code == 1 and "[frame-count]" in run.output
    run = CliRunner().invoke(main, ["validate", str(tmp_path / "nope")])
    assert run.exit_code == 2


def _ctc_valid(folder: Path) -> bool:
    """py-ctcmetrics' own validity check of a result folder (a failed assert: invalid)."""
    import warnings

    from ctc_metrics.metrics import valid

    masks = sorted(folder.glob("mask*.tif"))
    present = [np.unique(tifffile.imread(p)) for p in masks]
    lines = [[int(v) for v in line.split()] for line in (folder / "res_track.txt").open()]
    tracks = np.array(lines, np.int64).reshape(-1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(valid([str(p) for p in masks], tracks, [p[p > 0] for p in present]))
        except (AssertionError, IndexError):
            return False


def _erase(frames: list[np.ndarray], t: int, label: int) -> list[np.ndarray]:
    frames[t][frames[t] == label] = 0
    return frames


def _paint(frames: list[np.ndarray], t: int, label: int) -> list[np.ndarray]:
    frames[t][8:10, 0:2] = label
    return frames


def _mother_in_frame_2() -> list[np.ndarray]:
    """Cell 1 still present in frame 2, where its daughters begin (masks and lines agree)."""
    frames = _frames()
    y, x = BOXES[1]
    frames[2][y : y + 2, x : x + 2] = 1
    return frames


def _gap() -> list[np.ndarray]:
    """Cell 4 missed in frame 2; from frame 3 it is track 5, whose parent is 4."""
    frames = _erase(_frames(), 2, 4)
    frames[3][frames[3] == 4] = 5
    return frames


#: name -> (masks, res_track.txt): valid results and results that break one rule each
AGAINST_CTC = {
    "valid": (_frames, LINES),
    "valid with a gap": (_gap, "1 0 1 0\n2 2 3 1\n3 2 3 1\n4 0 1 0\n5 3 3 4\n"),
    "valid with an empty frame": (lambda: [*_frames(), np.zeros((10, 12), np.uint16)], LINES),
    "parent ends as the child begins": (_mother_in_frame_2, "1 0 2 0\n2 2 3 1\n3 2 3 1\n4 0 3 0\n"),
    "parent ends after the child begins": (_frames, "1 0 1 0\n2 2 3 4\n3 2 3 1\n4 0 3 0\n"),
    "undeclared label": (lambda: _paint(_frames(), 1, 9), LINES),
    "declared label absent from a frame": (lambda: _erase(_frames(), 1, 4), LINES),
    "label outside its frames": (lambda: _paint(_frames(), 3, 1), LINES),
    "label never in the masks": (_frames, LINES + "7 1 2 0\n"),
    "ends before it begins": (_frames, "1 0 1 0\n2 2 3 1\n3 2 3 1\n4 3 0 0\n"),
    "label declared twice": (_frames, LINES + "4 0 3 0\n"),
    "parent not declared": (_frames, "1 0 1 0\n2 2 3 1\n3 2 3 8\n4 0 3 0\n"),
}  # fmt: skip


@pytest.mark.parametrize("case", AGAINST_CTC)
def test_validator_agrees_with_py_ctcmetrics(tmp_path: Path, case: str) -> None:
    """Our rules refuse exactly what py-ctcmetrics' `valid` refuses, on valid and broken results."""
    frames, lines = AGAINST_CTC[case]
    folder = _result(tmp_path, frames(), lines)
    ours = is_valid(validate_result(folder))
    assert ours == _ctc_valid(folder)
    assert ours == case.startswith("valid")
