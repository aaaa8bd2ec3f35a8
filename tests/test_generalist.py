"""The generalist models (issue 17): their folders load and check, the cell-size unit makes a
graph scale-free, and every fluorescence run script without a model of its own runs them.

Each script is run as the challenge runs it (from a bundle's folder, no arguments) on a
small simulated sequence of its kind (`gnntrack simulate`, a few frames), and its result
must pass every CTC rule (`inference.ctc_rules`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from run_script_table import load_generator

from inference.cells.features import compact_labels, frame_features
from inference.ctc_rules import validate_result
from inference.models.tracker import Tracker
from inference.segmentation.segmenter import Segmenter
from inference.tracking.graph import FrameNodes, GraphSpec, build_window
from training.simulator import get_preset, simulate

REPO = Path(__file__).resolve().parents[1]
GENERAL = {2: REPO / "parameters/general-2d", 3: REPO / "parameters/general-3d"}
SIMULATE = {  # a small sequence of each kind (4 frames): quick to segment and track
    2: ("Fluo-N2DH-SIM+", {"size": (160, 160), "cells": 6, "frames": 4}),
    3: ("Fluo-N3DH-CE", {"size": (12, 96, 96), "cells": 5, "frames": 4}),
}


gen = load_generator()
FLUO_WITHOUT_MODEL = [ds for ds in gen.DATASETS if ds.general]


@pytest.mark.parametrize("ndim", [2, 3])
def test_generalist_folders_load_and_record_the_size_unit(ndim):
    tracker = Tracker.from_folder(GENERAL[ndim])
    assert tracker.ndim == ndim and tracker.embedder is not None
    assert tracker.spec.cell_diameter > 0  # lengths in cell-size units, not the pixels of one
    segmenter = Segmenter.from_folder(GENERAL[ndim] / "seg")
    assert len(segmenter.tile) == ndim


def test_every_fluorescence_dataset_without_a_model_has_a_generalist_others_none():
    own = {p.name for p in (REPO / "parameters").iterdir() if (p / "tracker").is_dir()}
    for ds in gen.DATASETS:
        fluo = ds.name.startswith("Fluo-")
        if fluo and ds.model not in own:
            assert ds.general == gen.GENERAL[ds.ndim], ds.name
        else:  # a model of its own, or bright-field / DIC / phase contrast: no generalist
            assert not ds.general, ds.name


def _blobs(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame of three cells, drawn at `scale` times the size (same field, scaled)."""
    mask = np.zeros((40, 60), np.uint16)
    mask[5:13, 6:14], mask[20:30, 30:37], mask[28:34, 44:56] = 1, 2, 3
    mask = np.kron(mask, np.ones((scale, scale), np.uint16))
    return mask, (mask > 0).astype(np.float32) * 100 + 10


def _window(scale: int, shift: int, spec: GraphSpec):
    frames = []
    for t in range(3):
        mask, image = _blobs(scale)
        mask = np.roll(mask, shift * scale * t, axis=1)
        table = frame_features(mask, image, t, compact_labels(mask))
        frames.append(FrameNodes(t, table, np.zeros((len(table), 0), np.float32)))
    return build_window(frames, spec)


def test_size_unit_makes_a_graph_of_twice_larger_cells_the_same():
    spec = GraphSpec(2, 20.0, 20.0, cell_diameter=10.0)
    small, large = _window(1, 2, spec), _window(2, 2, spec)
    assert np.array_equal(small.edges, large.edges)
    np.testing.assert_allclose(small.edge_attr.numpy(), large.edge_attr.numpy(), atol=1e-4)
    # lengths agree to a pixel's rounding of the smaller drawing; intensities exactly
    np.testing.assert_allclose(small.x.numpy(), large.x.numpy(), atol=0.15)
    raw = GraphSpec(2, 20.0, 20.0)  # without the opt-in: pixels, as every per-dataset model
    assert not np.allclose(_window(1, 2, raw).x.numpy(), _window(2, 2, raw).x.numpy())
    assert "cell_diameter" not in raw.to_dict() and spec.to_dict()["cell_diameter"] == 10.0


def test_size_unit_overlapping_windows_agree_on_a_frame_pairs_edges():
    """The stream sums a pair's scores over the windows holding it: their edges must match
    even where the frames' cell sizes differ (each pair is scaled by its own two frames)."""
    spec = GraphSpec(2, 12.0, 12.0, cell_diameter=10.0)
    frames = []
    for t, scale in enumerate((1, 1, 2, 2)):  # cells twice as large from frame 2 on
        mask, image = _blobs(scale)
        mask, image = mask[:80, :120], image[:80, :120]
        table = frame_features(mask, image, t, compact_labels(mask))
        frames.append(FrameNodes(t, table, np.zeros((len(table), 0), np.float32)))
    first, second = build_window(frames[:3], spec), build_window(frames[1:], spec)

    def pair(graph, frame: int) -> tuple[np.ndarray, np.ndarray]:
        keep = (graph.edges[:, 0] == frame) & (graph.edges[:, 2] == 1)
        return graph.edges[keep], graph.edge_attr.numpy()[keep]

    (edges_a, attr_a), (edges_b, attr_b) = pair(first, 1), pair(second, 1)
    assert len(edges_a) and np.array_equal(edges_a, edges_b)
    np.testing.assert_array_equal(attr_a, attr_b)


@pytest.fixture(scope="module")
def sequences(tmp_path_factory) -> dict[int, Path]:
    """One small simulated dataset per dimension count (its 01 only)."""
    root = tmp_path_factory.mktemp("sim")
    out = {}
    for ndim, (preset, options) in SIMULATE.items():
        out[ndim] = root / f"sim{ndim}d"
        simulate(out[ndim], get_preset(preset).with_options(**options), seed=17)
    return out


def _bundle(tmp: Path, models: dict[str, Path]) -> Path:
    """tmp/bundle: the scripts, .venv, and the model folders `models` (name -> folder)."""
    bundle = tmp / "bundle"
    shutil.copytree(REPO / "scripts", bundle / "scripts")
    (bundle / ".venv").symlink_to(Path(sys.prefix))
    (bundle / "parameters").mkdir()
    for name, folder in models.items():
        (bundle / "parameters" / name).symlink_to(folder)
    return bundle


def _run(bundle: Path, script: str, data: Path, sim: Path, **env_extra: str):
    dataset = data / script.rsplit("-", 1)[0]
    shutil.copytree(sim / "01", dataset / "01")
    env = {k: v for k, v in os.environ.items() if k != "GNNTRACK_PARAMS"}
    env.update(GNNTRACK_DATA=str(data), TMPDIR=str(data), **env_extra)
    result = subprocess.run(
        [f"./scripts/{script}"], cwd=bundle, env=env, capture_output=True, text=True, timeout=300
    )
    return result, dataset / "01_RES"


@pytest.mark.parametrize("ds", FLUO_WITHOUT_MODEL, ids=lambda ds: ds.name)
def test_fluorescence_script_without_a_model_runs_the_generalist(ds, sequences, tmp_path):
    bundle = _bundle(tmp_path, {f"general-{n}d": GENERAL[n] for n in (2, 3)})
    result, res = _run(bundle, f"{ds.name}-01.sh", tmp_path / "data", sequences[ds.ndim])
    assert result.returncode == 0, result.stderr
    assert f"models: parameters/general-{ds.ndim}d" in result.stderr
    assert f"{ds.name} has no trained model of its own" in result.stderr
    assert validate_result(res, images_dir=res.parent / "01") == []


def test_bright_field_dic_and_phase_contrast_scripts_still_refuse(sequences, tmp_path):
    bundle = _bundle(tmp_path, {f"general-{n}d": GENERAL[n] for n in (2, 3)})
    for k, name in enumerate(("BF-C2DL-HSC", "DIC-C2DH-HeLa", "PhC-C2DL-PSC")):
        result, res = _run(bundle, f"{name}-01.sh", tmp_path / f"d{k}", sequences[2])
        assert result.returncode == 3, result.stderr
        assert f"no trained model for {name}" in result.stderr and "general" not in result.stderr
        assert not res.exists()


def test_own_model_is_preferred_and_gnntrack_params_chooses(sequences, tmp_path):
    """A dataset's own folder (here the SIM+ model standing in as HeLa's) wins over the
    generalist; GNNTRACK_PARAMS wins over both."""
    own = REPO / "parameters/Fluo-N2DH-SIM+"
    models = {"general-2d": GENERAL[2], "Fluo-N2DL-HeLa": own}
    bundle = _bundle(tmp_path, models)
    result, res = _run(bundle, "Fluo-N2DL-HeLa-01.sh", tmp_path / "a", sequences[2])
    assert result.returncode == 0, result.stderr
    assert "generalist" not in result.stderr and validate_result(res) == []
    result, res = _run(
        bundle, "Fluo-N2DL-HeLa-01.sh", tmp_path / "b", sequences[2], GNNTRACK_PARAMS=str(own)
    )
    assert result.returncode == 0, result.stderr
    assert "GNNTRACK_PARAMS" in result.stderr and "generalist" not in result.stderr


MSC = REPO.parent / "shared/ctc/Fluo-C2DL-MSC/01"


@pytest.mark.skipif(not MSC.is_dir(), reason="needs ../shared/ctc/Fluo-C2DL-MSC (real frames)")
def test_general_2d_keeps_its_scale_on_msc_where_it_finds_texture_not_cells(capsys):
    """general-2d cuts MSC's large flat cells into pieces of one size on its grid; the scale
    adaptation once chased them up to 3.4 (1,160 pieces a frame): it must see that and stop."""
    from inference.io import open_images
    from inference.segmentation.adapt import adapt_scale_to, spread_frames

    segmenter = Segmenter.from_folder(GENERAL[2] / "seg")
    images = open_images(MSC)
    assert adapt_scale_to(spread_frames(images, 3), segmenter, images.folder.name) == 1.0
    assert "their size follows the scale, not the cells" in capsys.readouterr().err
