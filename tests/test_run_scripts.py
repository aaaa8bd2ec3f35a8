"""The CTC run scripts and evaluate.sh, run as the challenge runs them.

Each test lays out a copy of the bundle with a dataset beside it (`tmp/bundle`,
`tmp/Fluo-N2DH-SIM+/01`, a copy of the embedded sample) and runs a script by subprocess
from the bundle's folder, as `./scripts/Fluo-N2DH-SIM+-01.sh`.
"""

from __future__ import annotations

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
from run_script_table import load_generator

from inference.io import read_tiff, read_tracks, write_mask, write_tracks
from inference.models.folder import save_model_folder
from inference.segmentation.segmenter import MODEL_KIND as SEG_KIND
from seg_code.postprocess import PostprocessParams
from seg_code.unet import UNet

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample/Sim-N2DH"
VENV_BIN = Path(sys.executable).parent
DATASET = "Fluo-N2DH-SIM+"
FRAMES = 8  # of the sample's 40: enough to track, quick to run


gen = load_generator()


def _env(tmp: Path, path: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GNNTRACK_DATA"}
    env["TMPDIR"] = str(tmp)
    if path is not None:
        env["PATH"] = path
    return env


def _tiny_seg(folder: Path) -> None:
    """An untrained 2D segmenter: enough to exercise the run script end to end."""
    arch = {"ndim": 2, "in_channels": 2, "base_channels": 4, "depth": 2, "pool_z": None}
    config = {
        "architecture": arch,
        "context_frames": 1,
        "normalization": {"low": 1.0, "high": 99.8},
        "postprocess": PostprocessParams().to_dict(),
        "inference": {"tile": [160, 160], "margin": [8, 8], "batch_size": 1},
    }
    save_model_folder(folder, SEG_KIND, config, UNet(2, 2, 4, 2, None).state_dict())


@pytest.fixture
def layout(tmp_path) -> dict[str, Path]:
    """tmp/bundle (scripts + this dataset's parameters, no .venv), tmp/<Dataset>/01, tmp/scratch."""
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO / "scripts", bundle / "scripts")
    (bundle / "parameters").mkdir()
    seq = tmp_path / DATASET / "01"
    seq.mkdir(parents=True)
    for t in range(FRAMES):
        shutil.copy(SAMPLE / f"01/t{t:03d}.tif", seq)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return {"bundle": bundle, "dataset": tmp_path / DATASET, "scratch": scratch}


def _with_model(layout: dict[str, Path]) -> Path:
    """The bundle's parameters/<Dataset>: the shipped one, with a tiny seg/ if it has none."""
    params = layout["bundle"] / "parameters" / DATASET
    shutil.copytree(REPO / "parameters" / DATASET, params)
    if not (params / "seg/config.json").is_file():
        shutil.rmtree(params / "seg", ignore_errors=True)
        _tiny_seg(params / "seg")
    return params


def _run(layout, script=f"{DATASET}-01.sh", *, path=None, venv=False, timeout=120):
    venv_link = layout["bundle"] / ".venv"
    if venv and not venv_link.exists():
        venv_link.symlink_to(Path(sys.prefix))
    return subprocess.run(
        [f"./scripts/{script}"],
        cwd=layout["bundle"],
        env=_env(layout["scratch"], path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _left_in(layout) -> list[str]:
    """Everything in the dataset's folder but the input, plus anything left in TMPDIR."""
    names = sorted(p.name for p in layout["dataset"].iterdir() if p.name != "01")
    return names + sorted(p.name for p in layout["scratch"].iterdir())


def test_committed_scripts_equal_the_generators_output():
    assert gen.main(["--check"]) == 0, "run `python scripts/generate_run_scripts.py`"
    for name in gen.expected():
        assert os.access(REPO / "scripts" / name, os.X_OK), name


def test_table_lists_every_ctc_dataset_once_with_its_own_model():
    names = [ds.name for ds in gen.DATASETS]
    assert len(names) == len(set(names)) == 20
    assert {ds.ndim for ds in gen.DATASETS} == {2, 3}
    assert all(("2D" in ds.name) == (ds.ndim == 2) for ds in gen.DATASETS)
    # never another dataset's model: only the dataset's own folder (or a variant of it)
    assert all(ds.model.startswith(ds.name) for ds in gen.DATASETS)
    assert len(gen.expected()) == 40


def test_missing_input_is_a_clear_error_and_writes_nothing(layout):
    shutil.rmtree(layout["dataset"] / "01")
    layout["dataset"].joinpath("01").mkdir()
    result = _run(layout, venv=True)
    assert result.returncode == 2
    assert "input missing" in result.stderr and f"{DATASET}/01/t000.tif" in result.stderr
    assert _left_in(layout) == []


def test_missing_model_names_the_training_commands_and_borrows_none(layout):
    (layout["bundle"] / "parameters" / DATASET).mkdir()
    # another dataset's complete model beside it must not be used
    other = layout["bundle"] / "parameters" / "Fluo-N2DH-GOWT1"
    shutil.copytree(REPO / "parameters" / DATASET, other)
    if not (other / "seg").is_dir():
        _tiny_seg(other / "seg")
    result = _run(layout, venv=True)
    assert result.returncode == 3, result.stderr
    assert f"no trained model for {DATASET}" in result.stderr
    assert "lacks seg/ embedding/ tracker/" in result.stderr
    for command in ("train-seg", "train-embedding", "train-tracker"):
        assert f"gnntrack {command} ../{DATASET}" in result.stderr
    assert _left_in(layout) == []


def test_no_gnntrack_anywhere_is_a_clear_error(layout):
    _with_model(layout)
    result = _run(layout, path="/usr/bin:/bin")
    assert result.returncode == 127 and "./scripts/setup.sh" in result.stderr
    assert _left_in(layout) == []


def test_run_writes_only_a_valid_result_replacing_an_earlier_one(layout):
    _with_model(layout)
    res = layout["dataset"] / "01_RES"
    res.mkdir()
    (res / "res_track.txt").write_text("earlier\n")
    result = _run(layout, venv=True)
    assert result.returncode == 0, result.stderr
    assert _left_in(layout) == ["01_RES"]
    check = subprocess.run(
        [VENV_BIN / "gnntrack", "validate", res, "--images", layout["dataset"] / "01"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _fake_gnntrack(folder: Path, body: str) -> Path:
    """A stand-in `gnntrack` on PATH that records its arguments and TMPDIR, then runs body."""
    folder.mkdir()
    (folder / "gnntrack").write_text(
        f'#!/bin/bash\necho $$ > {folder}/pid\nprintf "%s\\n" "$@" > {folder}/args\n'
        f'echo "$TMPDIR" > {folder}/tmpdir\n{body}\n'
    )
    (folder / "gnntrack").chmod(0o755)
    return folder


def test_without_a_bundle_venv_gnntrack_comes_from_path(layout, tmp_path):
    params = _with_model(layout)
    fake = _fake_gnntrack(tmp_path / "bin", 'mkdir "${@: -2:1}"')
    result = _run(layout, path=f"{fake}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    data = layout["bundle"].parent
    assert (fake / "args").read_text().split("\n")[:-1] == [
        "run",
        f"{data}/{DATASET}",
        "01",
        "--model",
        str(params),
        "--out",
        f"{data}/{DATASET}/01_RES",
        "--overwrite",
    ]
    # scratch files go to a private folder under TMPDIR, removed afterwards
    assert Path((fake / "tmpdir").read_text().strip()).parent == layout["scratch"]
    assert _left_in(layout) == ["01_RES"]


def test_failing_run_keeps_the_earlier_result_and_leaves_nothing(layout):
    _with_model(layout)
    earlier = layout["dataset"] / "01_RES"
    earlier.mkdir()
    (earlier / "res_track.txt").write_text("earlier\n")
    (layout["dataset"] / "01" / f"t{FRAMES - 1:03d}.tif").write_bytes(b"not a tiff")
    result = _run(layout, venv=True)
    assert result.returncode != 0
    assert f"t{FRAMES - 1:03d}.tif" in result.stderr
    assert _left_in(layout) == ["01_RES"]
    assert (earlier / "res_track.txt").read_text() == "earlier\n"


def _all_sample_frames(layout) -> None:
    """The whole 40-frame sample as sequence 01: a run long enough to be caught mid-way."""
    for t in range(FRAMES, 40):
        shutil.copy(SAMPLE / f"01/t{t:03d}.tif", layout["dataset"] / "01")


def _start_script(layout) -> subprocess.Popen:
    """The run script with the real gnntrack, started; returns once its result folder is
    being written (the hidden .01_RES.tmp-* exists)."""
    venv_link = layout["bundle"] / ".venv"
    if not venv_link.exists():
        venv_link.symlink_to(Path(sys.prefix))
    proc = subprocess.Popen(
        [f"./scripts/{DATASET}-01.sh"],
        cwd=layout["bundle"],
        env=_env(layout["scratch"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(layout["dataset"].glob(".01_RES.tmp-*")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert list(layout["dataset"].glob(".01_RES.tmp-*")), "the run never started its result"
    return proc


def test_interrupted_run_leaves_no_intermediates(layout):
    """SIGTERM (a cluster's time limit, Ctrl-C, docker stop) while gnntrack writes: the
    script stops gnntrack, which removes its own unfinished result."""
    _with_model(layout)
    _all_sample_frames(layout)
    proc = _start_script(layout)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert _left_in(layout) == []


def _process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop(0))
        todo += children.get(tree[-1], [])
    return tree


def test_a_second_script_on_the_same_sequence_refuses_and_spares_the_first(layout):
    """Two run scripts of one sequence at once: the second refuses in one line and leaves
    the first one's unfinished result alone, which then completes. The first is paused
    (SIGSTOP) while the second runs, so it is surely still writing whatever the machine's
    speed (on a fast one it used to finish before the second started)."""
    _with_model(layout)
    _all_sample_frames(layout)
    first = _start_script(layout)
    paused = _process_tree(first.pid)
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        second = _run(layout, venv=True)
        work = list(layout["dataset"].glob(".01_RES.tmp-*"))
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    assert second.returncode != 0
    refusal = [line for line in second.stderr.splitlines() if "01_RES" in line and "Error" in line]
    assert len(refusal) == 1, second.stderr
    assert "another gnntrack run" in refusal[0], refusal[0]  # the lock, not "exists"
    assert work, "the second run removed the first's work"
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert _left_in(layout) == ["01_RES"]
    assert len(list((layout["dataset"] / "01_RES").glob("mask*.tif"))) == 40


def test_3d_script_runs_a_model_folder_chosen_explicitly(tmp_path):
    """A 3D dataset's script on a simulated Fluo-N3DH-CE sequence, with the simulated-data
    model named by GNNTRACK_PARAMS (the script itself never borrows it)."""
    dataset = tmp_path / "Fluo-N3DH-CE"
    simulate = [VENV_BIN / "gnntrack", "simulate", "--out", dataset, "--preset", "Fluo-N3DH-CE"]
    options = ["--size", "24x192x240", "--frames", "3", "--seed", "9004"]
    subprocess.run([*simulate, *options], check=True, capture_output=True)
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO / "scripts", bundle / "scripts")
    (bundle / ".venv").symlink_to(Path(sys.prefix))
    env = _env(tmp_path)
    absent = subprocess.run(
        ["./scripts/Fluo-N3DH-CE-01.sh"], cwd=bundle, env=env, capture_output=True, text=True
    )
    assert absent.returncode == 3 and "no trained model for Fluo-N3DH-CE" in absent.stderr
    env["GNNTRACK_PARAMS"] = str(tmp_path / "nowhere")
    wrong = subprocess.run(
        ["./scripts/Fluo-N3DH-CE-01.sh"], cwd=bundle, env=env, capture_output=True, text=True
    )
    assert wrong.returncode == 3 and "is not a folder" in wrong.stderr
    env["GNNTRACK_PARAMS"] = str(REPO / "parameters/Fluo-N3DH-CE-sim")
    result = subprocess.run(
        ["./scripts/Fluo-N3DH-CE-01.sh"],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "using the model folder" in result.stderr
    assert sorted(p.name for p in dataset.iterdir()) == ["01", "01_GT", "01_RES"]
    score = [VENV_BIN / "gnntrack", "evaluate", dataset / "01_RES", dataset / "01_GT"]
    out = subprocess.run([*score, "--json", "-m", "TRA,DET"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    scores = json.loads(out.stdout)
    assert scores["TRA"] >= 0.9 and scores["DET"] >= 0.9, scores


def _drop_track(res: Path, label: int) -> None:
    """Remove a track without daughters from a result folder (masks and res_track.txt)."""
    for path in sorted(res.glob("mask*.tif")):
        mask = read_tiff(path)
        write_mask(path, np.where(mask == label, 0, mask).astype(np.uint16))
    tracks = [t for t in read_tracks(res / "res_track.txt") if t.label != label]
    assert all(t.parent != label for t in tracks)
    write_tracks(res / "res_track.txt", tracks)


def test_evaluate_scores_the_result_against_the_gt(tmp_path):
    dataset = tmp_path / DATASET
    shutil.copytree(SAMPLE, dataset)
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO / "scripts", bundle / "scripts")
    (bundle / ".venv").symlink_to(Path(sys.prefix))
    export = [VENV_BIN / "gnntrack", "export-gt", dataset / "01_GT", "--out", dataset / "01_RES"]
    subprocess.run(export, check=True, capture_output=True)
    _drop_track(dataset / "01_RES", 1)  # a result that is not the GT: one cell never found
    measures = ["--json", "-m", "TRA,SEG,DET"]
    result = subprocess.run(
        ["./scripts/evaluate.sh", DATASET, "01", *measures],
        cwd=bundle,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert 0.9 < scores["TRA"] < 1 and 0.9 < scores["DET"] < 1 and scores["SEG"] < 1
    direct = [VENV_BIN / "gnntrack", "evaluate", dataset / "01_RES", dataset / "01_GT", *measures]
    expected = json.loads(subprocess.run(direct, check=True, capture_output=True).stdout)
    assert scores == expected  # 01_RES scored against 01_GT, nothing else
    missing = subprocess.run(
        ["./scripts/evaluate.sh", DATASET, "02"], cwd=bundle, capture_output=True, text=True
    )
    assert missing.returncode == 2 and f"{DATASET}/02_RES" in missing.stderr


def _snakemake() -> str:
    for candidate in (os.environ.get("GNNTRACK_SNAKEMAKE"), VENV_BIN / "snakemake"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    found = shutil.which("snakemake")
    if found is None:
        pytest.skip("snakemake not installed (or set GNNTRACK_SNAKEMAKE=/path/to/snakemake)")
    return found


@pytest.mark.slow
def test_workflow_runs_two_sequences_locally(tmp_path):
    snakemake = _snakemake()
    bundle, data = tmp_path / "bundle", tmp_path / "ctc"
    for folder in ("scripts", "workflow"):
        shutil.copytree(REPO / folder, bundle / folder)
    _with_model({"bundle": bundle})
    (bundle / ".venv").symlink_to(Path(sys.prefix))
    # two sequences of the simulated sample: frames 0-4 as 01, frames 10-14 as 02
    for seq, first in (("01", 0), ("02", 10)):
        (data / DATASET / seq).mkdir(parents=True)
        for t in range(5):
            shutil.copy(SAMPLE / f"01/t{first + t:03d}.tif", data / DATASET / seq / f"t{t:03d}.tif")
    command = [snakemake, "-s", "workflow/Snakefile", "--cores", "2", "--config", f"data={data}"]
    dry = subprocess.run([*command, "-n"], cwd=bundle, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"{DATASET}-01" in dry.stdout and f"{DATASET}-02" in dry.stdout
    result = subprocess.run(
        command, cwd=bundle, env=_env(tmp_path), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in (data / DATASET).iterdir()) == ["01", "01_RES", "02", "02_RES"]
    for seq in ("01", "02"):
        check = [VENV_BIN / "gnntrack", "validate", data / DATASET / f"{seq}_RES"]
        subprocess.run([*check, "--images", data / DATASET / seq], check=True, capture_output=True)
        assert (bundle / f"out/workflow/done/{DATASET}-{seq}.txt").is_file()
