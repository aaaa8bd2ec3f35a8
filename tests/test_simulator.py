"""The simulator writes consistent CTC ground truth, is deterministic, and looks like its data."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage as ndi

from inference.cli import main
from inference.io import Track, open_images, open_masks, read_tracks
from training.simulator import PRESETS, Lineage, Preset, generate, get_preset, simulate
from training.simulator.statistics import (
    division_rate,
    equivalent_diameter,
    label_centroids,
    measure_sequence,
    touching_labels,
)

# A busy little 2D world: every kind of event happens within a few frames.
BUSY_2D = replace(
    PRESETS["Fluo-N2DH-SIM+"],
    shape=(96, 112),
    frames=18,
    cells=14,
    radius=8.0,
    speed=1.5,
    fast_fraction=0.15,
    contact=0.85,
    division_rate=0.06,
    death_rate=0.02,
    entry_rate=2.0,
    seg_fraction=0.4,
)
BUSY_3D = replace(
    PRESETS["Fluo-N3DH-CE"],
    shape=(8, 56, 64),
    z_scale=3.0,
    frames=8,
    cells=10,
    radius=7.0,
    division_rate=0.08,
    min_area=10,
)


def check_dataset(root: Path) -> list[Track]:
    """Assert every CTC ground-truth rule on a simulated dataset; return its tracks."""
    images = open_images(root / "01")
    tra = open_masks(root / "01_GT" / "TRA", "man_track")
    seg = open_masks(root / "01_GT" / "SEG", "man_seg")
    tracks = read_tracks(root / "01_GT" / "TRA" / "man_track.txt")
    assert len(images) == len(tra) and images.shape == tra.shape
    assert tra.dtype == np.uint16 and seg.dtype == np.uint16
    by_label = {t.label: t for t in tracks}
    assert len(by_label) == len(tracks), "a label is declared twice"
    seen: dict[int, list[int]] = {t.label: [] for t in tracks}
    seg_frames = {f.index: i for i, f in enumerate(seg.frames)}
    for t, mask in enumerate(tra):
        boxes = ndi.find_objects(mask)
        for label, box in enumerate(boxes, start=1):
            if box is None:
                continue
            assert label in seen, f"frame {t}: label {label} is not in man_track.txt"
            seen[label].append(t)
            _, pieces = ndi.label(mask[box] == label)  # 4-/6-connectivity, the strictest
            assert pieces == 1, f"frame {t}: label {label} has {pieces} pieces"
        if t in seg_frames:
            instances = seg.read(seg_frames[t])
            assert np.array_equal(instances > 0, mask > 0), f"frame {t}: SEG and TRA differ"
            pairs = np.unique(np.stack([instances[mask > 0], mask[mask > 0]]), axis=1)
            assert len(set(pairs[0])) == len(set(pairs[1])) == pairs.shape[1]
    for track in tracks:
        assert seen[track.label] == list(range(track.begin, track.end + 1)), track
    children: dict[int, list[Track]] = {}
    for track in tracks:
        if track.parent:
            assert track.parent in by_label, f"parent of {track} is not declared"
            children.setdefault(track.parent, []).append(track)
    for parent, kids in children.items():
        assert len(kids) == 2, f"track {parent} has {len(kids)} daughters"
        assert all(k.begin == by_label[parent].end + 1 for k in kids)
    return tracks


@pytest.fixture(scope="module")
def busy_2d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "busy2d"
    simulate(out, BUSY_2D, seed=7)
    return out


def test_2d_ground_truth_is_consistent_and_eventful(busy_2d: Path) -> None:
    tracks = check_dataset(busy_2d)
    last = BUSY_2D.frames - 1
    parents = {t.parent for t in tracks if t.parent}
    assert parents, "no division happened"
    assert any(t.begin > 0 and t.parent == 0 for t in tracks), "no cell entered"
    ended = [t for t in tracks if t.end < last and t.label not in parents]
    assert ended, "no cell left the field or died"
    seg = sorted((busy_2d / "01_GT" / "SEG").glob("man_seg*.tif"))
    assert 0 < len(seg) < BUSY_2D.frames  # SEG on a subset of frames
    assert open_images(busy_2d / "01").dtype == np.uint16


def test_2d_cells_touch_and_move(busy_2d: Path) -> None:
    stats = measure_sequence(busy_2d)
    assert stats.touching > 0
    assert stats.speed_median > 0.5
    assert stats.leaving > 0
    assert stats.division_rate > 0


def test_result_passes_the_ctc_validator(busy_2d: Path, tmp_path: Path) -> None:
    from inference.ctc_rules import is_valid, validate_result

    res = tmp_path / "01_RES"
    res.mkdir()
    for path in sorted((busy_2d / "01_GT" / "TRA").glob("man_track*.tif")):
        (res / path.name.replace("man_track", "mask")).write_bytes(path.read_bytes())
    text = (busy_2d / "01_GT" / "TRA" / "man_track.txt").read_text()
    (res / "res_track.txt").write_text(text)
    violations = validate_result(res, images_dir=busy_2d / "01", warnings=True)
    assert is_valid(violations), violations
    assert not violations, violations


@pytest.mark.parametrize("confine", [True, False])
def test_3d_ground_truth_is_consistent(tmp_path: Path, confine: bool) -> None:
    preset = replace(BUSY_3D, confine=confine, entry_rate=0.0 if confine else 3.0)
    summary = simulate(tmp_path / "ce", preset, seed=3)
    tracks = check_dataset(tmp_path / "ce")
    images = open_images(tmp_path / "ce" / "01")
    assert images.shape == preset.shape and images.ndim == 3 and images.dtype == np.uint8
    assert summary.tracks == len(tracks) and summary.frames == preset.frames
    if confine:  # an embryo: nobody leaves
        assert all(
            t.end == preset.frames - 1 or t.label in {k.parent for k in tracks} for t in tracks
        )


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    preset = replace(BUSY_2D, frames=6)
    simulate(tmp_path / "a", preset, seed=11)
    simulate(tmp_path / "b", preset, seed=11)
    simulate(tmp_path / "c", preset, seed=12)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert a["01/t000.tif"] != c["01/t000.tif"]


def test_frames_are_streamed() -> None:
    """The first frame of a 1000-frame run comes at once: nothing is precomputed."""
    frames = generate(replace(BUSY_2D, frames=1000), seed=0)
    first = next(frames)
    assert first.index == 0 and first.image.shape == BUSY_2D.shape
    assert first.tracks.dtype == np.uint16


def test_lineage_rules() -> None:
    lineage = Lineage()
    cid, mother, born = np.array([1, 2]), np.array([-1, -1]), np.array([0, 0])
    assert lineage.update(0, cid, mother, born).tolist() == [1, 2]
    # cell 1 divides into 3 and 4 (both seen), cell 2 leaves the field
    kids = lineage.update(1, np.array([3, 4]), np.array([1, 1]), np.array([1, 1]))
    # cell 2 comes back: a new track; cell 5 is born of 3 but its twin is not in view
    back = lineage.update(2, np.array([2, 5]), np.array([-1, 3]), np.array([0, 2]))
    tracks = {t.label: t for t in lineage.tracks()}
    assert [tracks[k].parent for k in kids] == [1, 1]
    assert tracks[1].end == 0 and tracks[kids[0]].begin == 1
    assert back[0] not in (1, 2) and tracks[back[0]].parent == 0
    assert tracks[back[1]].parent == 0
    assert lineage.divisions == 1


def test_cli_writes_refuses_and_overwrites(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "Sim"
    args = ["simulate", "--out", str(out), "--size", "64x80", "--frames", "3", "--cells", "3"]
    result = runner.invoke(main, [*args, "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (out / "01" / "t002.tif").is_file()
    assert (out / "01_GT" / "TRA" / "man_track.txt").is_file()
    assert open_images(out / "01").shape == (64, 80)
    before = _digest(out)
    result = runner.invoke(main, [*args, "--seed", "2"])
    assert result.exit_code != 0 and "already exists" in result.output
    assert _digest(out) == before, "a refused run must leave the old dataset alone"
    result = runner.invoke(main, [*args, "--seed", "2", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert _digest(out) != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary leftovers"


def test_cli_3d_preset(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "--out",
            str(tmp_path / "ce"),
            "--dims",
            "3",
            "--size",
            "6x48x48",
            "--frames",
            "2",
            "--cells",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert open_images(tmp_path / "ce" / "01").shape == (6, 48, 48)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "12x"], "is not S, HxW or DxHxW"),
        (["--size", "20"], "too small for cells"),
        (["--preset", "Fluo-N3DH-CE", "--dims", "2"], "is 3D, but --dims 2"),
        (["--preset", "nope"], "unknown preset"),
        (["--frames", "0"], "--frames"),
        (["--dims", "4"], "--dims"),
        (["--size", "8x64x64"], "has 3 sizes but the simulation is 2D"),
    ],
)
def test_cli_bad_options_are_clear(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_preset_validation_and_overrides() -> None:
    sim = get_preset("fluo-n2dh-sim+")
    assert sim.name == "Fluo-N2DH-SIM+"
    with pytest.raises(ValueError, match="division_rate"):
        replace(sim, division_rate=-1)
    with pytest.raises(ValueError, match="dtype"):
        replace(sim, dtype="float32")
    with pytest.raises(ValueError, match="ndim"):
        replace(sim, ndim=4)
    half = sim.with_options(size=(345, 314))
    assert half.shape == (345, 314) and half.cells == round(sim.cells / 4)
    assert sim.with_options(size=(345, 314), cells=50).cells == 50
    ce = get_preset("Fluo-N3DH-CE").with_options(size=(100, 120), frames=5)
    assert ce.shape == (ce.shape[0], 100, 120) and ce.frames == 5
    assert all(isinstance(p, Preset) and p.ndim in (2, 3) for p in PRESETS.values())


def test_statistics_functions() -> None:
    mask = np.zeros((20, 20), np.uint16)
    mask[2:6, 2:6] = 3
    mask[2:6, 6:8] = 5
    mask[15:17, 15:17] = 9
    labels, sizes, centroids = label_centroids(mask)
    assert labels.tolist() == [3, 5, 9] and sizes.tolist() == [16, 8, 4]
    assert np.allclose(centroids[0], [3.5, 3.5])
    assert touching_labels(mask).tolist() == [3, 5]
    assert np.isclose(equivalent_diameter(np.pi * 25, 2), 10.0)
    assert np.isclose(equivalent_diameter(4 / 3 * np.pi * 125, 3), 10.0)
    tracks = [Track(1, 0, 4), Track(2, 5, 9, 1), Track(3, 5, 9, 1)]
    assert np.isclose(division_rate(tracks), 1 / 15)


# Measured on the real CTC training sequences by benchmarks/simulator_realism.py.
REAL = {
    "Fluo-N2DH-SIM+": {"diameter": 49.5, "speed_median": 3.5, "fg_bg_ratio": 1.41, "snr": 8.7},
    "Fluo-N2DL-HeLa": {"diameter": 25.8, "speed_median": 2.2},
}


@pytest.mark.parametrize(
    ("name", "size", "frames"),
    [("Fluo-N2DH-SIM+", (300, 300), 24), ("Fluo-N2DL-HeLa", (220, 260), 24)],
)
def test_presets_look_like_their_data(tmp_path: Path, name: str, size: tuple, frames: int) -> None:
    preset = get_preset(name).with_options(size=size, frames=frames)
    preset = replace(preset, cells=preset.cells * 2, seg_fraction=0.25)  # more cells to measure
    simulate(tmp_path / "d", preset, seed=1)
    stats = measure_sequence(tmp_path / "d")
    real = REAL[name]
    assert 0.7 < stats.diameter / real["diameter"] < 1.3
    assert 0.5 < stats.speed_median / real["speed_median"] < 1.6
    assert stats.speed_p90 > stats.speed_median > 0
    if "fg_bg_ratio" in real:
        assert 0.8 < stats.fg_bg_ratio / real["fg_bg_ratio"] < 1.25
        assert 0.5 < stats.snr / real["snr"] < 2.0
    assert stats.division_rate > 0 and stats.cells_per_frame > 3
