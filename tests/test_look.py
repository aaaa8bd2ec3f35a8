"""The look of a sequence (background, noise, signal) measured from its frames, the look
shifts built on it, and what a run says about it.

The estimates must hold on synthetic frames of a known background and noise (within 10%),
whatever the number of cells; a compressed signal must land at the signal/noise asked for;
and the shipped SIM+ segmenter must still find the cells of a frame whose cells stand only
two noise sds above the background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from inference.cli import main as cli
from inference.io import open_images, open_masks, write_tiff
from inference.segmentation.segmenter import Segmenter
from seg_code.look import Look, estimate_look, pixel_noise
from training.segmentation.looks import compress_signal, rescale, rescale_labels, standard_shifts

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample/Sim-N2DH"
SIM_MODEL = REPO / "parameters/Fluo-N2DH-SIM+/seg"


def _frame(
    rng: np.random.Generator,
    background: float,
    noise: float,
    cells: int,
    contrast: float,
    shape=(300, 320),
    dtype=np.uint16,
) -> tuple[np.ndarray, np.ndarray]:
    """Blurred discs `contrast` grey levels above `background`, white noise of sd `noise`."""
    from scipy import ndimage as ndi

    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.uint16)
    for i, (cy, cx) in enumerate(rng.uniform(20, min(shape) - 20, (cells, 2)), 1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 12**2] = i
    signal = ndi.gaussian_filter((labels > 0).astype(float) * contrast, 1.5)
    image = background + signal + rng.normal(0.0, noise, shape)
    return np.clip(np.rint(image), 0, np.iinfo(dtype).max).astype(dtype), labels


@pytest.mark.parametrize(
    ("background", "noise", "cells", "dtype"),
    [(94.0, 3.5, 8, np.uint16), (94.0, 3.5, 60, np.uint16), (2000.0, 40.0, 30, np.uint16),
     (40.0, 2.5, 20, np.uint8)],
)  # fmt: skip
def test_background_and_noise_are_estimated_within_ten_percent(background, noise, cells, dtype):
    rng = np.random.default_rng(cells)
    frames = [_frame(rng, background, noise, cells, 8 * noise, dtype=dtype)[0] for _ in range(3)]
    look = estimate_look(frames)
    assert look.background == pytest.approx(background, rel=0.10)
    assert look.noise == pytest.approx(noise, rel=0.10)
    assert look.signal > 4 * noise  # bright cells are seen above the noise


def test_a_3d_stack_is_estimated_like_its_slices():
    rng = np.random.default_rng(3)
    stack = np.stack([_frame(rng, 500.0, 12.0, 6, 100.0)[0] for _ in range(10)])
    look = estimate_look([stack])
    assert look.background == pytest.approx(500.0, rel=0.10)
    assert look.noise == pytest.approx(12.0, rel=0.10)


def test_noise_estimate_ignores_smooth_structure():
    yy, xx = np.mgrid[:200, :200]
    ramp = 100.0 + 0.5 * xx + 50.0 * np.exp(-((yy - 100) ** 2 + (xx - 100) ** 2) / 400.0)
    noisy = ramp + np.random.default_rng(0).normal(0, 2.0, ramp.shape)
    assert pixel_noise(ramp) < 0.3  # a ramp and a blurred blob are no noise
    assert pixel_noise(noisy) == pytest.approx(2.0, rel=0.10)


def test_compressed_signal_lands_at_the_signal_to_noise_asked_for():
    rng = np.random.default_rng(1)
    image, labels = _frame(rng, 94.0, 3.5, 20, 40.0, shape=(400, 400))
    look = estimate_look([image])
    level = float(np.median(image[labels > 0])) - look.background
    for snr in (4.0, 2.0, 1.0):
        shifted = compress_signal(image, look, level, snr, np.random.default_rng(2))
        after = estimate_look([shifted])
        measured = (float(np.median(shifted[labels > 0])) - after.background) / after.noise
        assert measured == pytest.approx(snr, rel=0.2), snr
        assert after.noise == pytest.approx(look.noise, rel=0.10)  # the noise stays as it was
    assert np.array_equal(compress_signal(image, look, level, 50.0, rng), image)  # already dim


def test_rescaled_masks_follow_the_rescaled_frame():
    rng = np.random.default_rng(4)
    image, labels = _frame(rng, 94.0, 3.5, 5, 40.0, shape=(120, 160))
    for factor in (0.75, 1.33):
        bigger = rescale(image, factor)
        masks = rescale_labels(labels, factor, bigger.shape)
        assert masks.shape == bigger.shape == (round(120 * factor), round(160 * factor))
        assert set(np.unique(masks)) == set(np.unique(labels))
        assert float(np.mean(bigger[masks > 0])) > float(np.mean(bigger[masks == 0])) + 20


def test_every_standard_shift_keeps_shape_and_grey_levels_unless_it_rescales():
    rng = np.random.default_rng(5)
    image, labels = _frame(rng, 94.0, 3.5, 10, 30.0, shape=(96, 96))
    look = estimate_look([image])
    for shift in standard_shifts():
        out = shift.apply(image, look, 30.0, np.random.default_rng(0))
        assert out.dtype == image.dtype, shift.label
        expected = tuple(round(s * shift.scale) for s in image.shape)
        assert out.shape == expected, shift.label


def _matched_fraction(found: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of true cells covered more than half by one found object (the CTC's DET
    matching rule)."""
    hits = 0
    ids = [i for i in np.unique(truth) if i]
    for i in ids:
        inside = found[truth == i]
        values, counts = np.unique(inside[inside > 0], return_counts=True)
        hits += bool(len(counts)) and counts.max() * 2 > inside.size
    return hits / len(ids)


def test_shipped_segmenter_still_finds_the_cells_of_a_low_signal_frame(one_torch_thread):
    segmenter = Segmenter.from_folder(SIM_MODEL)
    images, truth = open_images(SAMPLE / "01"), open_masks(SAMPLE / "01_GT" / "TRA", "man_track")
    t = 20
    window = [images.read(t - 1), images.read(t)]
    markers = truth.read(t)
    look = estimate_look(window)
    level = float(np.median(window[-1][markers > 0])) - look.background
    assert level / look.noise > 4  # the sample's cells are well above the noise ...
    dim = [
        compress_signal(f, look, level, 2.0, np.random.default_rng(i)) for i, f in enumerate(window)
    ]
    assert estimate_look(dim).snr < look.snr / 2  # ... and the shifted ones are not
    plain = segmenter.labels([segmenter.normalize(f) for f in window], window[-1].shape)
    shifted = segmenter.labels([segmenter.normalize(f) for f in dim], dim[-1].shape)
    assert _matched_fraction(plain, markers) >= 0.9
    assert _matched_fraction(shifted, markers) >= 0.85


def _sequence(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        write_tiff(folder / f"t{t:03d}.tif", frame)
    return folder


def test_segment_logs_the_look_and_warns_on_a_low_signal_sequence(tmp_path, one_torch_thread):
    rng = np.random.default_rng(6)
    bright = _sequence(tmp_path / "bright" / "01", [_frame(rng, 94, 3.5, 8, 60.0)[0]] * 2)
    dim = _sequence(tmp_path / "dim" / "01", [_frame(rng, 94, 3.5, 8, 6.0)[0]] * 2)
    runner = CliRunner()
    said = {}
    for name, folder in (("bright", bright), ("dim", dim)):
        args = ["segment", "--images", str(folder), "--out", str(tmp_path / f"{name}-masks")]
        result = runner.invoke(cli, [*args, "--model", str(SIM_MODEL)])
        assert result.exit_code == 0, result.output
        said[name] = result.output
    for text in said.values():
        assert "look of 01: background" in text and "noise sd" in text
    assert "warning" not in said["bright"]
    assert "warning: bright cells stand only" in said["dim"]


def test_look_reports_its_signal_to_noise():
    look = Look(background=10.0, noise=2.0, signal=5.0)
    assert look.snr == 2.5 and look.as_dict()["snr"] == 2.5
    assert "signal/noise 2.5" in str(look)


def _normalised_frame(seed: int, contrast: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    image, labels = _frame(np.random.default_rng(seed), 94.0, 3.5, 12, contrast, shape=(128, 128))
    lo, hi = np.percentile(image, [1, 99.8])
    channels = np.stack([(image - lo) / (hi - lo)] * 2).astype(np.float32)
    return channels, labels


def test_dimmed_cells_lose_contrast_and_the_rest_keep_it():
    from training.segmentation.looks import dim_some_cells

    image, _ = _normalised_frame(7)
    yy, xx = np.mgrid[:128, :128]
    labels = np.zeros((128, 128), np.int32)
    for i, (cy, cx) in enumerate([(y, x) for y in (24, 64, 104) for x in (24, 64, 104)], 1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 12**2] = i
    image = image * 0.1 + np.float32(labels > 0)  # cells on a grid, none touching
    out = dim_some_cells(image, labels, np.random.default_rng(0), share=(0.5, 0.5), by=(0.2, 0.2))
    background = float(np.median(image[-1][labels == 0]))
    ratios = []
    for i in np.unique(labels)[1:]:
        core = (labels == i) & (ndi_erode(labels == i))
        before = float(image[-1][core].mean()) - background
        ratios.append((float(out[-1][core].mean()) - background) / before)
    assert min(ratios) == pytest.approx(0.2, abs=0.05)  # dimmed cells: a fifth of the signal
    assert max(ratios) == pytest.approx(1.0, abs=0.02)  # the others untouched
    assert out.shape == image.shape and np.isfinite(out).all()


def ndi_erode(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    return ndi.binary_erosion(mask, iterations=5)


def test_look_augmentation_and_validation_looks_are_normalised_frames():
    from training.segmentation.looks import augment_look, validation_looks

    image, labels = _normalised_frame(8)
    rng = np.random.default_rng(1)
    for _ in range(20):
        out = augment_look(image, labels, rng, p_dim=1.0, p_compress=1.0)
        assert out.shape == image.shape and out.dtype == np.float32 and np.isfinite(out).all()
        lo, hi = np.percentile(out[-1], [1, 99.8])
        assert lo == pytest.approx(0.0, abs=1e-3) and hi == pytest.approx(1.0, abs=1e-3)
    shifted = validation_looks(image, labels, np.random.default_rng(2))
    assert set(shifted) == {"signal/noise 2", "half the cells dim", "gamma 2"}
    cells, background = labels > 0, labels == 0
    plain = float(image[-1][cells].mean() - image[-1][background].mean())
    for name, out in shifted.items():
        contrast = float(out[-1][cells].mean() - out[-1][background].mean())
        noise = pixel_noise(out[-1])
        assert contrast / noise < plain / pixel_noise(image[-1]), name  # a harder look


def test_the_looks_rate_sets_how_many_training_patches_keep_their_own_look():
    from training.segmentation.augment import AugmentConfig, augment

    image, labels = _normalised_frame(8)
    valid = np.ones(labels.shape, bool)

    def changed(rate: float) -> float:
        config = AugmentConfig(patch=labels.shape, zoom=(1.0, 1.0), gamma=(1.0, 1.0),
                               noise=(0.0, 0.0), blur=(0.0, 0.0), contrast=(1.0, 1.0),
                               offset=(0.0, 0.0), looks=True, looks_rate=rate)  # fmt: skip
        rng = np.random.default_rng(3)
        draws = [augment(image, labels, valid, config, rng) for _ in range(200)]
        # the only change left that alters the set of grey levels is a look (flips and
        # turns keep them; gamma, contrast, offset, noise and blur are off)
        return float(np.mean([not np.allclose(np.sort(d[0].ravel()), np.sort(image.ravel()))
                              for d in draws]))  # fmt: skip

    # a look with chance 1 - (1 - 0.4 r)(1 - 0.5 r): 0.70 at rate 1, 0.40 at 0.5, 0.09 at 0.1
    assert changed(1.0) == pytest.approx(0.70, abs=0.08)
    assert changed(0.5) == pytest.approx(0.40, abs=0.08)
    assert changed(0.1) == pytest.approx(0.09, abs=0.05)


def test_train_seg_with_looks_records_them_and_validates_on_shifted_frames(tmp_path):
    from training.simulator import get_preset, simulate

    data = tmp_path / "Sim"
    preset = get_preset("Fluo-N2DH-SIM+").with_options(
        frames=6, size=(128, 128), cells=4, seg_fraction=1.0
    )
    simulate(data, preset, seed=4)
    model = tmp_path / "seg"
    args = ["train-seg", str(data), "--train-frames", "0:4", "--val-frames", "4:6",
            "--out", str(model), "--iterations", "6", "--batch-size", "2", "--patch", "64,64",
            "--depth", "2", "--val-every", "3", "--looks", "--looks-rate", "0.5",
            "--val-looks"]  # fmt: skip
    run = CliRunner().invoke(cli, args)
    assert run.exit_code == 0, run.output
    import json

    settings = json.loads((model / "config.json").read_text())["training"]["settings"]
    assert settings["looks"] is True and settings["val_looks"] is True
    assert settings["looks_rate"] == 0.5
    Segmenter.from_folder(model)  # loads like any model


def test_scale_adapts_to_smaller_cells_and_stays_on_the_models_own(one_torch_thread):
    from dataclasses import replace

    from inference.segmentation.adapt import adapt_scale_to, median_diameter

    segmenter = Segmenter.from_folder(SIM_MODEL)
    assert segmenter.cell_diameter and segmenter.scale == 1.0
    images = open_images(SAMPLE / "01")
    frames = [images.read(t) for t in (5, 20, 35)]
    own = replace(segmenter)
    assert adapt_scale_to(frames, own) == 1.0  # the sample's cells are the model's size
    assert own.postprocess == segmenter.postprocess
    small = [rescale(f, 0.6) for f in frames]
    adapted = replace(segmenter)
    scale = adapt_scale_to(small, adapted)
    assert 1.4 < scale < 1.9  # ~ 1 / 0.6, as the cells are 0.6 times as wide
    assert adapted.postprocess.min_cell_size < segmenter.postprocess.min_cell_size / 2
    masks = [adapted.labels([adapted.normalize(f)] * 2, f.shape) for f in small]
    assert masks[0].shape == small[0].shape
    measured = median_diameter(masks)
    assert measured == pytest.approx(segmenter.cell_diameter * 0.6, rel=0.25)
    fixed = replace(segmenter, cell_diameter=None)
    assert adapt_scale_to(small, fixed) == 1.0  # no recorded diameter: no adaptation


class _Texture(Segmenter):
    """Finds pieces of one size on the network's grid (16 px) at any scale: texture, not
    cells, as a 2D model does on cells unlike its training data (MSC under general-2d)."""

    def labels(self, context: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        side = max(round(16 / self.scale), 1)
        rows, cols = np.indices(shape) // side
        return (rows * (shape[1] // side + 1) + cols + 1).astype(np.int32)


def test_scale_stays_where_the_objects_size_follows_the_scale(capsys):
    from dataclasses import fields

    from inference.segmentation.adapt import adapt_scale_to

    base = Segmenter.from_folder(SIM_MODEL)
    texture = _Texture(**{f.name: getattr(base, f.name) for f in fields(base)})
    frames = [np.zeros((96, 96), np.float32)] * 2
    assert adapt_scale_to(frames, texture, "tex") == base.scale  # not 48 / 18 = 2.7, then 7
    assert texture.postprocess == base.postprocess
    said = capsys.readouterr().err
    assert "segmenting at scale 2.6" in said  # it tried, once
    assert "objects of tex measure 7 px across at scale 2.6" in said
    assert "their size follows the scale, not the cells" in said


def test_segment_says_when_it_adapts_the_scale(tmp_path, one_torch_thread):
    images = open_images(SAMPLE / "01")
    seq = _sequence(tmp_path / "DS" / "01", [rescale(images.read(t), 0.6) for t in range(3)])
    args = ["segment", "--images", str(seq), "--out", str(tmp_path / "masks")]
    result = CliRunner().invoke(cli, [*args, "--model", str(SIM_MODEL)])
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if line.startswith("cells of 01 measure")]
    assert len(said) == 1 and "the model's 48 px: segmenting at scale 1." in said[0], said


class _Threshold(Segmenter):
    """Finds every pixel above 105 (frame grey levels), at any scale: dim cells of the test
    frames come out as their small bright cores, bright ones whole."""

    def labels(self, context: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        return self._frame_labels

    def normalize(self, frame: np.ndarray) -> np.ndarray:
        from scipy import ndimage as ndi

        self._frame_labels = ndi.label(np.asarray(frame) > 105)[0].astype(np.int32)
        return np.zeros((1, 1), np.float32)


def _dim_among_bright(bright_diameter: float) -> np.ndarray:
    """Background 100; four bright cells (200) `bright_diameter` wide; six dim ones whose
    cores (110) are 20 px wide in a rim at 104 (below the threshold)."""
    yy, xx = np.mgrid[:400, :400]
    frame = np.full((400, 400), 100.0, np.float32)
    for i in range(10):
        cy, cx = 60 + (i // 4) * 130, 50 + (i % 4) * 100
        r2 = (yy - cy) ** 2 + (xx - cx) ** 2
        if i < 4:
            frame[r2 < (bright_diameter / 2) ** 2] = 200.0
        else:
            frame[r2 < 24**2] = 104.0
            frame[r2 < 10**2] = 110.0
    return frame


def test_bright_half_keeps_the_brighter_objects():
    from inference.segmentation.adapt import bright_half

    labels = np.array([[1, 1, 2, 2, 3, 0, 4]], np.int32)
    frame = np.array([[5, 5, 1, 1, 9, 0, 2]], np.float32)
    assert np.array_equal(bright_half([labels], [frame])[0], [[1, 1, 0, 0, 3, 0, 0]])
    empty = np.zeros((3, 3), np.int32)
    assert bright_half([empty], [empty.astype(float)])[0] is empty


def test_dim_cells_found_in_part_do_not_rescale_but_smaller_bright_cells_do(capsys):
    from dataclasses import fields

    from inference.segmentation.adapt import adapt_scale_to, median_diameter

    base = Segmenter.from_folder(SIM_MODEL)
    probe = _Threshold(**{f.name: getattr(base, f.name) for f in fields(base)})
    frames = [_dim_among_bright(base.cell_diameter)] * 2
    masks = []
    for f in frames:
        probe.normalize(f)
        masks.append(probe.labels([], f.shape))
    assert median_diameter(masks) < base.cell_diameter / 2  # most found cells are small cores
    assert adapt_scale_to(frames, probe, "dim") == base.scale
    assert "segmenting at scale" not in capsys.readouterr().err
    small = [_dim_among_bright(base.cell_diameter * 0.6)] * 2
    assert adapt_scale_to(small, probe, "small") != base.scale  # the bright cells shrank too
    assert "cells of small measure" in capsys.readouterr().err


@pytest.mark.realdata
def test_a_rescale_that_cuts_the_objects_into_more_is_undone(capsys):
    """MSC's objects are pieces of cells; blurred by 1.5 px they measure smaller than its
    cells, so the run would enlarge the frame, which cuts them into more pieces still (DET
    0.864 -> 0.740 on the held-out frames). A change of magnification keeps the number of
    cells: a rescale that finds a quarter more objects is undone, and the log says so."""
    from inference.segmentation.adapt import adapt_scale_to
    from training.segmentation.looks import blur

    data_dir = REPO.parent / "shared" / "ctc" / "Fluo-C2DL-MSC"
    if not data_dir.is_dir():
        pytest.skip(f"{data_dir} not found")
    segmenter = Segmenter.from_folder(REPO / "parameters/Fluo-C2DL-MSC/seg")
    images = open_images(data_dir / "01")
    frames = [blur(images.read(t), 1.5) for t in (45, 46, 47)]
    assert adapt_scale_to(frames, segmenter, "blurred") == 0.5
    said = capsys.readouterr().err
    assert "cells of blurred measure" in said  # it tried
    assert "the rescale cuts them" in said and "segmenting at the trained scale 0.5" in said
