"""Hostile input, as a new user would give it (issue 14): every case is one clear line.

Each test drives the `gnntrack` command (in-process with click's runner, or as a process
where signals, locks or another user matter) on copies of a few frames of the embedded
sample and of a shipped model folder, never on the originals.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner, Result

from inference.cli import main
from inference.models.tracker import Tracker

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample/Sim-N2DH"
PARAMS = REPO / "parameters/Fluo-N2DH-SIM+"
PARAMS_3D = REPO / "parameters/Fluo-N3DH-CE-sim"
GNNTRACK = Path(sys.executable).parent / "gnntrack"
LONG = 16  # frames of the runs that are interrupted: long enough to catch one midway


def _cli(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line(result: Result | subprocess.CompletedProcess, *needles: str) -> str:
    """The single stderr line of a refusal (exit 2); it must name every one of `needles`."""
    code = result.exit_code if isinstance(result, Result) else result.returncode
    lines = result.stderr.strip().splitlines()
    assert code == 2, (code, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _snapshot(*folders: Path) -> dict[str, str]:
    """Every file under `folders` with the sha256 of its bytes."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _dataset(root: Path, frames: int) -> Path:
    """root/DS/01 (the sample's first `frames` frames) and root/DS/01_GT (the sample's GT)."""
    ds = root / "DS"
    (ds / "01").mkdir(parents=True)
    for t in range(frames):
        shutil.copy(SAMPLE / f"01/t{t:03d}.tif", ds / "01")
    shutil.copytree(SAMPLE / "01_GT", ds / "01_GT")
    return ds


@pytest.fixture
def work(tmp_path: Path) -> dict[str, Path]:
    """A dataset (4 frames + GT), a copy of the SIM+ model folder and a result (the GT's)."""
    ds = _dataset(tmp_path, 4)
    params = tmp_path / "params"
    shutil.copytree(PARAMS, params)
    res = tmp_path / "RES"
    assert _cli("export-gt", ds / "01_GT", "--out", res).exit_code == 0
    return {"ds": ds, "params": params, "res": res, "tmp": tmp_path}


# --- an output that is, contains or lies inside an input is refused ------------------------

#: Command lines (paths from the `work` fixture) whose output overlaps one of their inputs.
OVERLAPS = {
    "run --out DATASET": "run {ds} 01 --model {params} --out {ds}",
    "run --out SEQ": "run {ds} 01 --model {params} --out {ds}/01",
    "run --out inside SEQ": "run {ds} 01 --model {params} --out {ds}/01/RES",
    "run --out GT": "run {ds} 01 --model {params} --out {ds}/01_GT",
    "run --out inside model": "run {ds} 01 --model {params} --out {params}/tracker",
    "run --out inside model, old --params": "run {ds} 01 --params {params} --out {params}/seg",
    "run --edges inside SEQ": "run {ds} 01 --model {params} --out {tmp}/R --edges {ds}/01/e.csv",
    "segment --out = SEQ": "segment --images {ds}/01 --out {ds}/01 --model {params}/seg",
    "segment --out = model": "segment --images {ds}/01 --out {params}/seg --model {params}/seg",
    "track --out masks": "track --images {ds}/01 --masks {res} --model {params} --out {res}",
    "track --out containing SEQ": "track --images {ds}/01 --masks {res} --model {params} "
    "--out {ds}",
    "export-gt --out inside GT": "export-gt {ds}/01_GT --out {ds}/01_GT/TRA",
    "report --out RES": "report {res} --out {res}",
    "movie inside RES": "movie {res} --images {ds}/01 --out {res}/m.gif",
    "export into RES": "export {res} --out {res}/tracks.csv --to napari",
    "import-geff --out masks": "import-geff {tmp} --masks {res} --out {res}",
    "train-seg --out DATASET": "train-seg {ds} --val-frames 0:1 --iterations 1 --out {ds}",
    "train-embedding --model GT": "train-embedding {ds} --masks {res} --iterations 1 "
    "--model {ds}/01_GT",
    "train-generalist --out containing --init": "train-generalist --dim 2 --scale small "
    "--init {params}/seg --work {tmp}/W --out {params}",
}


@pytest.mark.parametrize("overwrite", [False, True], ids=["", "overwrite"])
@pytest.mark.parametrize("case", list(OVERLAPS))
def test_an_output_over_an_input_is_refused(work, case, overwrite):
    before = _snapshot(work["tmp"])
    args = OVERLAPS[case].format(**work).split() + (["--overwrite"] if overwrite else [])
    line = _one_line(_cli(*args), "this output", "the input")
    assert "Error:" in line
    assert _snapshot(work["tmp"]) == before, "an input changed"
    assert not [p for p in work["tmp"].rglob(".*tmp-*")], "a temporary folder was left"


def test_the_default_output_beside_the_sequence_is_still_fine(work):
    """DATASET/01_RES lies inside DATASET but in none of its inputs (01, 01_GT, the model)."""
    result = _cli("run", work["ds"], "01", "--model", work["params"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in work["ds"].iterdir()) == ["01", "01_GT", "01_RES"]


# --- config values of the wrong type or range, unknown keys --------------------------------


def _edit(config: Path, path: str, value: object = None, *, delete: bool = False) -> None:
    """Set (or delete) the key `a.b.c` of a JSON config file."""
    data = json.loads(config.read_text())
    *parents, key = path.split(".")
    node = data
    for parent in parents:
        node = node[parent]
    if delete:
        del node[key]
    else:
        node[key] = value
    config.write_text(json.dumps(data, indent=2))


def _track(work: dict[str, Path]) -> Result:
    out = work["tmp"] / "TRACKED"
    return _cli(
        "track", "--images", work["ds"] / "01", "--masks", work["res"], "--model", work["params"],
        "--out", out,
    )  # fmt: skip


BAD_VALUES = [
    ("seg", "postprocess.min_cell_size", "big", "an integer"),
    ("seg", "postprocess.cell_threshold", 1.5, "between 0 and 1"),
    ("seg", "inference.tile", "big", "list"),
    ("seg", "inference.scale", 0, "> 0"),
    ("seg", "normalization.high", 120, "between 0 and 100"),
    ("tracker", "window.stride", 0, ">= 1"),
    ("tracker", "window.frames", "eight", "an integer"),
    ("tracker", "graph.radius", -5, "> 0"),
    ("tracker", "graph.max_candidates", 0, ">= 1"),
    ("tracker", "solver.division_cost", "high", "a number"),
    ("embedding", "crop.size", [32], "2 "),
    ("embedding", "architecture.dim", -1, ">= 1"),
]


@pytest.mark.parametrize(("part", "key", "value", "allowed"), BAD_VALUES)
def test_a_config_value_of_the_wrong_type_or_range_is_one_line(work, part, key, value, allowed):
    config = work["params"] / part / "config.json"
    _edit(config, key, value)
    if part == "seg":
        result = _cli(
            "segment", "--images", work["ds"] / "01", "--out", work["tmp"] / "M",
            "--model", work["params"] / "seg",
        )  # fmt: skip
    else:
        result = _track(work)
    line = _one_line(result, str(config), key, allowed)
    assert "allowed" in line


@pytest.mark.parametrize(
    ("part", "key", "suggestion"),
    [
        ("tracker", "solver.divison_cost", "division_cost"),
        ("tracker", "window.strde", "stride"),
        ("tracker", "grpah", "graph"),
        ("embedding", "crop.sise", "size"),
        ("seg", "postprocess.min_cel_size", "min_cell_size"),
        ("seg", "inference.tiles", "tile"),
    ],
)
def test_a_misspelt_config_key_is_refused_with_the_closest_valid_one(work, part, key, suggestion):
    config = work["params"] / part / "config.json"
    _edit(config, key, 1)
    if part == "seg":
        result = _cli(
            "segment", "--images", work["ds"] / "01", "--out", work["tmp"] / "M",
            "--model", work["params"] / "seg",
        )  # fmt: skip
    else:
        result = _track(work)
    _one_line(result, str(config), key, f"did you mean {suggestion}")


def test_a_tracker_config_without_a_window_uses_the_one_default(work):
    """One source of defaults: the stride a config may leave out is the tracker's own (6),
    not a second copy of it (which said 4)."""
    _edit(work["params"] / "tracker/config.json", "window", delete=True)
    tracker = Tracker.from_folder(work["params"])
    shipped = json.loads((PARAMS / "tracker/config.json").read_text())["window"]
    assert (tracker.window, tracker.stride) == (shipped["frames"], shipped["stride"]) == (8, 6)


@pytest.mark.parametrize(
    "folder", sorted(p.name for p in (REPO / "parameters").iterdir() if p.is_dir())
)
def test_every_shipped_model_folder_still_loads(folder):
    from inference.segmentation.segmenter import Segmenter

    assert Tracker.from_folder(REPO / "parameters" / folder).embedder is not None
    assert Segmenter.from_folder(REPO / "parameters" / folder / "seg").tile


# --- outputs that cannot be written --------------------------------------------------------


def _without_root_override() -> None:
    """In the child before exec: drop the capabilities that let root write anywhere
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so permissions apply to it as to anyone."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_output_under_a_read_only_folder_is_one_line_and_writes_nothing(tmp_path):
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    as_anyone = {"preexec_fn": _without_root_override} if os.geteuid() == 0 else {}
    for out in (readonly / "RES", readonly / "deeper/RES"):
        result = subprocess.run(
            [GNNTRACK, "export-gt", SAMPLE / "01_GT", "--out", out],
            capture_output=True,
            text=True,
            timeout=120,
            **as_anyone,
        )
        _one_line(result, str(readonly), "read-only")
        assert list(readonly.iterdir()) == []
    readonly.chmod(0o755)


def test_an_output_under_a_file_is_one_line_and_writes_nothing(work):
    blocker = work["tmp"] / "a-file"
    blocker.write_text("keep me\n")
    cases = [
        ["export-gt", SAMPLE / "01_GT", "--out", blocker / "RES"],
        ["run", work["ds"], "01", "--model", work["params"], "--out", blocker / "sub/RES"],
        ["movie", work["res"], "--images", work["ds"] / "01", "--out", blocker / "m.gif"],
    ]
    for args in cases:
        _one_line(_cli(*args), str(blocker))
        assert blocker.read_text() == "keep me\n"
    assert not list(work["tmp"].glob(".*"))


# --- interrupted, killed and concurrent runs ----------------------------------------------


def _start_run(ds: Path, params: Path, *extra: object) -> subprocess.Popen:
    args = [GNNTRACK, "run", ds, "01", "--model", params, "--out", ds / "01_RES", "--overwrite"]
    return subprocess.Popen(
        [str(a) for a in [*args, *extra]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_partial_result(ds: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    """The run's temporary result folder, once it holds its first mask."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tmp in ds.glob(".01_RES.tmp-*"):
            if list(tmp.glob("mask*.tif")):
                return tmp
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run wrote no mask in time")


@pytest.fixture
def long_run(tmp_path: Path) -> dict[str, Path]:
    """A 16-frame dataset with an earlier result, and a model folder (a few seconds' run)."""
    ds = _dataset(tmp_path, LONG)
    earlier = ds / "01_RES"
    earlier.mkdir()
    (earlier / "res_track.txt").write_text("earlier\n")
    return {"ds": ds, "params": PARAMS}


def test_sigterm_cleans_up_like_ctrl_c(long_run):
    ds = long_run["ds"]
    proc = _start_run(ds, long_run["params"])
    _wait_for_partial_result(ds, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert sorted(p.name for p in ds.iterdir()) == ["01", "01_GT", "01_RES"]
    assert (ds / "01_RES/res_track.txt").read_text() == "earlier\n"
    assert "Traceback" not in stderr


def test_repeated_sigterm_still_cleans_up(long_run):
    """scancel and the run script's own trap both send SIGTERM: a second one arriving during
    the clean-up must not interrupt it (CI once found a cancelled job's temporary folder)."""
    ds = long_run["ds"]
    proc = _start_run(ds, long_run["params"])
    _wait_for_partial_result(ds, proc)
    deadline = time.monotonic() + 3
    while proc.poll() is None and time.monotonic() < deadline:
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.001)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert sorted(p.name for p in ds.iterdir()) == ["01", "01_GT", "01_RES"]
    assert (ds / "01_RES/res_track.txt").read_text() == "earlier\n"
    assert "Traceback" not in stderr


def test_a_killed_runs_leftovers_are_removed_by_the_next_run(long_run):
    ds = long_run["ds"]
    proc = _start_run(ds, long_run["params"])
    left = _wait_for_partial_result(ds, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert left.is_dir()  # SIGKILL: nothing could clean up
    again = subprocess.run(
        [GNNTRACK, "run", ds, "01", "--model", PARAMS, "--out", ds / "01_RES", "--overwrite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in ds.iterdir()) == ["01", "01_GT", "01_RES"]
    assert len(list((ds / "01_RES").glob("mask*.tif"))) == LONG


def test_a_second_run_on_the_same_output_refuses_and_leaves_the_first_alone(long_run):
    ds = long_run["ds"]
    first = _start_run(ds, long_run["params"])
    tmp = _wait_for_partial_result(ds, first)
    first.send_signal(signal.SIGSTOP)  # paused midway, as if slow: the overlap is certain
    try:
        second = _start_run(ds, long_run["params"])
        _, stderr = second.communicate(timeout=120)
        assert tmp.is_dir(), "the second run removed the first one's temporary folder"
    finally:
        first.send_signal(signal.SIGCONT)
    _one_line(
        subprocess.CompletedProcess(second.args, second.returncode, "", stderr),
        str(ds / "01_RES"),
        "another gnntrack run",
    )
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert len(list((ds / "01_RES").glob("mask*.tif"))) == LONG
    assert sorted(p.name for p in ds.iterdir()) == ["01", "01_GT", "01_RES"]


# --- damaged frames -------------------------------------------------------------------------


def test_a_truncated_tiff_is_just_the_one_line(tmp_path):
    """A truncated multi-page (3D) TIFF made tifffile log warnings before the error."""
    seq = tmp_path / "DS/01"
    seq.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for t in range(3):
        stack = rng.integers(0, 4000, (6, 64, 80), dtype=np.uint16)
        tifffile.imwrite(seq / f"t{t:03d}.tif", stack, compression="lzw", photometric="minisblack")
    data = (seq / "t001.tif").read_bytes()
    (seq / "t001.tif").write_bytes(data[: len(data) // 3])
    result = subprocess.run(
        [GNNTRACK, "run", seq.parent, "01", "--model", PARAMS_3D],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _one_line(result, "t001.tif", "truncated or corrupt")
    assert sorted(p.name for p in seq.parent.iterdir()) == ["01"]


def test_nan_pixels_are_background_with_a_warning_naming_the_frame(tmp_path):
    seq = tmp_path / "DS/01"
    seq.mkdir(parents=True)
    for t in range(3):
        frame = tifffile.imread(SAMPLE / f"01/t{t:03d}.tif").astype(np.float32)
        if t == 1:
            frame[:20, :20] = np.nan
        tifffile.imwrite(seq / f"t{t:03d}.tif", frame)
    out = tmp_path / "masks"
    result = _cli("segment", "--images", seq, "--out", out, "--model", PARAMS / "seg")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "NaN" in line]
    assert len(warnings) == 1 and "t001.tif" in warnings[0], result.stderr
    assert "background" in warnings[0]
    cells = [len(np.unique(tifffile.imread(out / f"mask{t:03d}.tif"))) - 1 for t in range(3)]
    assert cells[1] >= cells[0] - 2 and cells[1] > 5, cells
