"""The contrast cap for sequences whose few bright cells would press dim ones into the noise:
the rule, the normalisation it caps, a run that applies it and says so, its calibration, and
(on real data) that it gives back the dim cells of held-out SIM+ frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_denoise import model_with  # a copy of the SIM+ segmenter with config sections set

from inference.cli import main as cli
from inference.io import open_images, open_masks, write_tiff
from inference.segmentation.adapt import adapt_contrast
from inference.segmentation.segmenter import Segmenter
from seg_code.contrast import ContrastRule
from seg_code.look import estimate_look
from seg_code.normalize import percentile_normalize, percentile_range
from training.segmentation.denoise_calibration import (
    CalibrationFrames,
    load_calibration_frames,
    score_masks,
    segment_windows,
)
from training.segmentation.looks import blur, gamma_curve
from training.segmentation.metrics import marker_counts

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample/Sim-N2DH"
SIM_MODEL = REPO / "parameters/Fluo-N2DH-SIM+/seg"
CTC = REPO.parent / "shared" / "ctc"


def test_the_rule_scales_with_the_typical_cell_and_caps_nothing_without_one():
    rule = ContrastRule(range_per_cell=7.0)
    assert rule.active and rule.max_range(10.0) == pytest.approx(70.0)
    assert rule.max_range(0.0) is None and rule.max_range(-3.0) is None
    assert rule.max_range(float("nan")) is None
    assert not ContrastRule().active and ContrastRule().max_range(10.0) is None


def test_a_capped_range_lifts_dim_cells_and_a_wide_cap_changes_nothing():
    rng = np.random.default_rng(0)
    frame = rng.normal(100.0, 2.0, (120, 120)).astype(np.float32)
    frame[10:30, 10:30] = 1000.0  # one bright cell
    frame[60:90, 60:90] += 20.0  # a dim one
    lo, hi = percentile_range(frame, 1.0, 99.8)
    plain = percentile_normalize(frame)
    assert np.array_equal(percentile_normalize(frame, max_range=2 * (hi - lo)), plain)
    capped = percentile_normalize(frame, max_range=60.0)
    assert np.median(plain[60:90, 60:90]) < 0.05
    assert np.median(capped[60:90, 60:90]) == pytest.approx(
        np.median(plain[60:90, 60:90]) * (hi - lo) / 60.0, rel=1e-4
    )
    assert np.median(capped[60:90, 60:90]) > 0.3
    assert capped[20, 20] > 10  # bright cells go past 1, as they do unclipped


def test_a_malformed_rule_is_refused_in_one_line(tmp_path):
    model = model_with(tmp_path, contrast={"range_per_cell": -1.0})
    frames = tmp_path / "ds" / "01"
    frames.mkdir(parents=True)
    write_tiff(frames / "t000.tif", open_images(SAMPLE / "01").read(0))
    args = ["segment", "--images", str(frames), "--out", str(tmp_path / "M"), "--model", str(model)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "contrast.range_per_cell" in lines[0]


def _dim_among_bright(frame: np.ndarray, markers: np.ndarray, share: float = 0.1) -> np.ndarray:
    """Every other cell of `frame` at a tenth of its signal above the background: a few
    bright cells among many dim ones, the look the cap is for."""
    look = estimate_look([frame])
    out = frame.astype(np.float64)
    dim = np.isin(markers, np.unique(markers)[2::2])
    out[dim] = look.background + share * (out[dim] - look.background)
    return np.clip(np.rint(out), 0, np.iinfo(frame.dtype).max).astype(frame.dtype)


def test_a_run_caps_the_range_of_dim_cells_among_bright_ones_finds_them_and_says_so(
    tmp_path, one_torch_thread, capsys
):
    from training.segmentation.contrast_calibration import MARGIN, range_ratios

    images, gt = open_images(SAMPLE / "01"), open_masks(SAMPLE / "01_GT" / "TRA", "man_track")
    picks = (10, 11, 12, 13)
    # the rule as calibration makes it, on the sample's own frames (they span ~2.7 typical cells)
    own_frames = [images.read(t) for t in range(20, 30)]
    per_cell = MARGIN * max(range_ratios(Segmenter.from_folder(SIM_MODEL), own_frames))
    dimmed = tmp_path / "dimmed" / "01"
    dimmed.mkdir(parents=True)
    for i, t in enumerate(picks):
        write_tiff(dimmed / f"t{i:03d}.tif", _dim_among_bright(images.read(t), gt.read(t), 0.2))
    found, said, masks = {}, {}, {}
    for name, section in (("capped", {"range_per_cell": per_cell}), ("plain", {})):
        model = model_with(tmp_path / name, contrast=section)
        out = tmp_path / f"{name}-masks"
        args = ["segment", "--images", str(dimmed), "--out", str(out), "--model", str(model)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        said[name] = result.stderr
        masks[name] = list(open_masks(out, "mask"))
        found[name] = sum(
            marker_counts(gt.read(t), m)[1] for t, m in zip(picks, masks[name], strict=True)
        )
    assert "contrast range capped at" in said["capped"], said["capped"]
    assert f"({per_cell:.1f} times the typical cell's" in said["capped"]
    assert "capped" not in said["plain"]
    assert found["capped"] >= found["plain"] + 3, found  # of ~60 cells, half of them dimmed
    # the sample's own look: the cap is wider than its range, nothing said or changed
    segmenter = Segmenter.from_folder(tmp_path / "capped" / "seg")
    frames = [images.read(t) for t in picks[:3]]
    cap = adapt_contrast(frames, estimate_look(frames), segmenter)
    widest = max(hi - lo for lo, hi in (percentile_range(f) for f in frames))
    assert cap is not None and cap > widest
    assert "wider than the sampled frames' range" in capsys.readouterr().err


def test_calibration_measures_the_range_tries_the_cap_and_writes_what_it_chose(tmp_path):
    model = model_with(tmp_path, contrast={})  # no rule yet
    args = ["calibrate-contrast", str(SAMPLE), "--model", str(model), "--frames", "30:40"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    config = json.loads((model / "config.json").read_text())
    record = config["training"]["contrast_calibration"]
    assert record["frames"] == [34, 37, 39] and record["own_frames"] == 10
    assert len(record["ratios"]) == 10 and all(r > 1 for r in record["ratios"])
    assert record["candidate"] == pytest.approx(1.25 * max(record["ratios"]), abs=0.01)
    assert set(record["looks"]) == {
        "unshifted", "signal/noise 2", "gamma 0.5", "gamma 2", "blur sigma 3 px"
    }  # fmt: skip
    unshifted = record["looks"]["unshifted"]
    assert unshifted["with"] == unshifted["without"]  # its own frames: the cap is wider
    changes = [s["with"] - s["without"] for s in record["looks"].values()]
    assert record["kept"] == (min(changes) >= -0.01 and max(changes) > 0.01)
    rule = Segmenter.from_folder(model).contrast
    assert rule.range_per_cell == (record["candidate"] if record["kept"] else None)
    assert "wrote" in result.stdout


def _held_out(dataset: str, frames: range) -> tuple[Segmenter, CalibrationFrames]:
    """The shipped segmenter of `dataset` (it must carry a cap) and its annotated held-out
    `frames` of 01; skips where the real data is absent."""
    data_dir = CTC / dataset
    if not data_dir.is_dir():
        pytest.skip(f"{data_dir} not found")
    segmenter = Segmenter.from_folder(REPO / "parameters" / dataset / "seg")
    assert segmenter.contrast.active
    return segmenter, load_calibration_frames(data_dir, "01", frames, segmenter.context_frames)


def _scores_without_and_with_the_cap(
    segmenter: Segmenter, data: CalibrationFrames
) -> tuple[float, float, float | None]:
    """(score without the cap, score with the cap a run sets on `data`, the cap)."""
    current = [w[-1] for w in data.windows]
    segmenter.max_range = None
    plain = score_masks(segment_windows(segmenter, data.windows), data)
    cap = adapt_contrast(current[:3], estimate_look(current), segmenter)
    return plain, score_masks(segment_windows(segmenter, data.windows), data), cap


@pytest.mark.realdata
def test_sim_plus_shipped_cap_gives_back_dim_cells_of_held_out_frames():
    """SIM+'s held-out frames under gamma 2 (dim cells dimmer among bright ones) lose half
    their cells to percentile normalisation; the shipped cap, chosen on validation frames,
    gives them back and leaves the unshifted frames as they were."""
    segmenter, data = _held_out("Fluo-N2DH-SIM+", range(52, 65, 3))
    plain, capped, _ = _scores_without_and_with_the_cap(segmenter, data)
    assert capped == pytest.approx(plain, abs=0.005)
    data.windows = [[gamma_curve(f, 2.0) for f in w] for w in data.windows]
    plain, capped, cap = _scores_without_and_with_the_cap(segmenter, data)
    assert cap is not None and capped > plain + 0.15, (plain, capped)


@pytest.mark.realdata
def test_gowt1s_cap_recovers_dim_nuclei_but_refuses_to_cut_a_blurred_sequence(capsys):
    """GOWT1's masks under a 3 px blur are mostly background pieces, whose "typical cell"
    would cap the range into more pieces still: the run measures that the cap multiplies
    the objects and keeps the full range. Under gamma 2 the cap finds its dim nuclei."""
    segmenter, data = _held_out("Fluo-N2DH-GOWT1", range(40, 48))
    own = data.windows
    data.windows = [[blur(f, 3.0) for f in w] for w in own]
    capsys.readouterr()
    plain, capped, cap = _scores_without_and_with_the_cap(segmenter, data)
    said = capsys.readouterr().err
    assert cap is None and segmenter.max_range is None and capped == plain
    assert "would cut them into pieces" in said and "not capped" in said
    data.windows = [[gamma_curve(f, 2.0) for f in w] for w in own]
    plain, capped, cap = _scores_without_and_with_the_cap(segmenter, data)
    assert "contrast range capped at" in capsys.readouterr().err
    assert cap is not None and capped > plain + 0.02, (plain, capped)


def test_the_adaptations_segment_each_setting_of_the_sampled_frames_once(
    tmp_path, one_torch_thread
):
    """The run's adaptations (smoothing, scale, cap) decide as they would each on its own,
    while the sampled frames are segmented once per setting they try, not once per look."""
    from inference.segmentation.adapt import (
        MaskCache,
        adapt_noise,
        adapt_scale_to,
        adapt_to_sequence,
    )

    images, gt = open_images(SAMPLE / "01"), open_masks(SAMPLE / "01_GT" / "TRA", "man_track")
    frames = [_dim_among_bright(images.read(t), gt.read(t), 0.2) for t in (10, 12, 14)]
    look = estimate_look(frames)
    # a model that finds the sample noisier than its own frames (it smooths) and caps the range
    model = model_with(
        tmp_path,
        denoise={"snr": 1000.0, "ratios": [2.0, 8.0], "sigmas": [1.0, 2.0]},
        contrast={"range_per_cell": 2.0},
    )

    def counted(segmenter: Segmenter) -> list[tuple]:
        settings: list[tuple] = []
        labels = segmenter.labels

        def labels_counted(context, shape):
            settings.append(MaskCache.key(segmenter))
            return labels(context, shape)

        segmenter.labels = labels_counted  # type: ignore[method-assign]
        return settings

    each = Segmenter.from_folder(model)
    each_settings = counted(each)
    adapt_noise(frames, look, each)
    adapt_scale_to(frames, each)
    adapt_contrast(frames, look, each)
    together = Segmenter.from_folder(model)
    together_settings = counted(together)
    adapt_to_sequence(frames, look, together)

    assert together.smoothing == each.smoothing > 0
    assert together.max_range == each.max_range and together.max_range is not None
    assert together.scale == each.scale
    tried = {key[1:] for key in each_settings}  # the model's id differs between the two
    assert len(tried) == 3  # unsmoothed (noise), then smoothed uncapped and capped ...
    assert len(each_settings) == 4 * len(frames)  # ... smoothed uncapped twice: scale, cap
    assert len(together_settings) == 3 * len(frames)
    assert {key[1:] for key in together_settings} == tried
