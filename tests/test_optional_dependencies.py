"""An inference install (and the image) runs without the training-only dependencies.

torch-geometric (only a test's reference) and pytorch-metric-learning (only train-embedding)
are extras; with both made unimportable, the whole run works and train-embedding says in one
line what to install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample/Sim-N2DH"
BLOCK = (
    "import sys\n"
    "for name in ('torch_geometric', 'pytorch_metric_learning'):\n"
    "    sys.modules[name] = None  # `import name` now raises ImportError\n"
    "from inference.cli import main\n"
    "sys.argv[0] = 'gnntrack'\n"
    "main()\n"
)


def _gnntrack(*args: object, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_lists_every_command_without_the_training_extras():
    result = _gnntrack("--help")
    assert result.returncode == 0, result.stderr
    for command in ("run", "track", "segment", "train-embedding", "train-tracker", "simulate"):
        assert command in result.stdout


def test_a_run_needs_neither_extra(tmp_path):
    dataset = tmp_path / "DS"
    (dataset / "01").mkdir(parents=True)
    for t in range(4):
        (dataset / "01" / f"t{t:03d}.tif").write_bytes((SAMPLE / f"01/t{t:03d}.tif").read_bytes())
    result = _gnntrack("run", dataset, "01", "--model", REPO / "parameters/Fluo-N2DH-SIM+")
    assert result.returncode == 0, result.stderr
    assert len(list((dataset / "01_RES").glob("mask*.tif"))) == 4
    assert (dataset / "01_RES" / "res_track.txt").read_text().strip()


def test_train_embedding_without_its_extra_is_one_line(tmp_path):
    (tmp_path / "model").mkdir()
    result = _gnntrack(
        "train-embedding", SAMPLE, "--model", tmp_path / "model", "--iterations", "2"
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "pytorch-metric-learning" in lines[-1] and "train" in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_train_generalist_without_the_extra_is_one_line_before_any_stage(tmp_path):
    result = _gnntrack(
        "train-generalist", "--dim", "2", "--scale", "small", "--work", tmp_path / "w",
        "--out", tmp_path / "m",
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "pytorch-metric-learning" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "w" / "data").exists() and not (tmp_path / "m").exists()
