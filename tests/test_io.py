"""CTC I/O: frame folders, TIFF reading, track files, atomic result folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

import inference.io.sequence as sequence_module
from inference.errors import CTCError
from inference.io import (
    LabelSpans,
    Track,
    atomic_output_dir,
    frame_name,
    open_images,
    open_masks,
    read_tiff,
    read_tracks,
    tracks_from_masks,
    write_mask,
    write_result,
    write_tiff,
    write_tracks,
)

RNG = np.random.default_rng(0)


def _frames(folder: Path, arrays: list[np.ndarray], prefix: str = "t", digits: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, array in enumerate(arrays):
        write_tiff(folder / f"{prefix}{index:0{digits}d}.tif", array)
    return folder


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("shape", [(12, 17), (4, 12, 17)], ids=["2D", "3D"])
def test_images_round_trip_every_type(tmp_path: Path, dtype: str, shape: tuple[int, ...]) -> None:
    arrays = [(RNG.random(shape) * 200).astype(dtype) for _ in range(3)]
    seq = open_images(_frames(tmp_path / "01", arrays))
    assert (len(seq), seq.shape, seq.dtype, seq.ndim) == (3, shape, np.dtype(dtype), len(shape))
    assert seq.indices == [0, 1, 2]
    for read, written in zip(seq, arrays, strict=True):
        np.testing.assert_array_equal(read, written)


def test_files_are_lzw_and_lzw_files_are_read(tmp_path: Path) -> None:
    array = RNG.integers(0, 4000, (20, 30), dtype=np.uint16)
    write_tiff(tmp_path / "t000.tif", array)
    with tifffile.TiffFile(tmp_path / "t000.tif") as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.LZW
    np.testing.assert_array_equal(read_tiff(tmp_path / "t000.tif"), array)


def test_leading_singleton_axes_are_dropped(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "t000.tif", np.ones((1, 1, 8, 9), np.uint8))
    assert open_images(tmp_path).shape == (8, 9)


@pytest.mark.parametrize("digits", [3, 4])
def test_three_and_four_digit_names(tmp_path: Path, digits: int) -> None:
    seq = open_images(_frames(tmp_path, [np.zeros((5, 5), np.uint8)] * 3, digits=digits))
    assert len(seq) == 3 and seq.frames[2].path.name == f"t{2:0{digits}d}.tif"


def test_frame_name_width_follows_sequence_length() -> None:
    assert frame_name("mask", 7, 1000) == "mask007.tif"
    assert frame_name("mask", 7, 1001) == "mask0007.tif"


def test_sequence_is_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _frames(tmp_path, [np.full((6, 6), i, np.uint8) for i in range(5)])
    reads: list[Path] = []
    real = sequence_module.read_tiff
    monkeypatch.setattr(sequence_module, "read_tiff", lambda p: reads.append(p) or real(p))
    seq = open_images(folder)
    assert reads == []  # opening reads headers only
    frames = iter(seq)
    assert next(frames)[0, 0] == 0 and len(reads) == 1
    assert next(frames)[0, 0] == 1 and len(reads) == 2


def test_masks_detect_prefix_and_need_integers(tmp_path: Path) -> None:
    gt = _frames(tmp_path / "TRA", [np.eye(4, dtype=np.uint16)] * 2, prefix="man_track")
    assert open_masks(gt).prefix == "man_track"
    seg = tmp_path / "SEG"
    seg.mkdir()
    write_tiff(seg / "man_seg003.tif", np.eye(4, dtype=np.uint16))
    assert open_masks(seg).indices == [3]  # SEG frames may skip
    floats = _frames(tmp_path / "RES", [np.eye(4, dtype=np.float32)], prefix="mask")
    with pytest.raises(CTCError, match="integer"):
        open_masks(floats)


def _error(call) -> str:
    with pytest.raises(CTCError) as info:
        call()
    return str(info.value)


def test_missing_folder(tmp_path: Path) -> None:
    assert str(tmp_path / "nope") in _error(lambda: open_images(tmp_path / "nope"))


def test_empty_sequence(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a frame")
    assert "no frames" in _error(lambda: open_images(tmp_path))


@pytest.mark.parametrize("name", ["t01.tif", "image.tif", "t000_0.tif", "t00001.tif"])
def test_non_ctc_name(tmp_path: Path, name: str) -> None:
    _frames(tmp_path, [np.zeros((4, 4), np.uint8)])
    write_tiff(tmp_path / name, np.zeros((4, 4), np.uint8))
    message = _error(lambda: open_images(tmp_path))
    assert name in message and "not a CTC frame name" in message


def test_gap_and_mixed_widths(tmp_path: Path) -> None:
    write_tiff(tmp_path / "t000.tif", np.zeros((4, 4), np.uint8))
    write_tiff(tmp_path / "t002.tif", np.zeros((4, 4), np.uint8))
    assert "frame 1 is missing" in _error(lambda: open_images(tmp_path))
    write_tiff(tmp_path / "t0001.tif", np.zeros((4, 4), np.uint8))
    assert "3- and 4-digit" in _error(lambda: open_images(tmp_path))


def test_mixed_2d_and_3d(tmp_path: Path) -> None:
    write_tiff(tmp_path / "t000.tif", np.zeros((4, 4), np.uint8))
    write_tiff(tmp_path / "t001.tif", np.zeros((3, 4, 4), np.uint8))
    message = _error(lambda: open_images(tmp_path))
    assert "t001.tif" in message and "2D and 3D" in message


def test_shape_change(tmp_path: Path) -> None:
    _frames(tmp_path, [np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8)])
    assert "frame 1 has shape (4, 5)" in _error(lambda: open_images(tmp_path))


def test_corrupt_and_truncated_tiff(tmp_path: Path) -> None:
    _frames(tmp_path, [RNG.integers(0, 255, (64, 64), dtype=np.uint8)] * 2)
    (tmp_path / "t001.tif").write_bytes(b"this is not a TIFF file at all")
    assert "t001.tif" in _error(lambda: open_images(tmp_path))

    write_tiff(tmp_path / "t001.tif", RNG.integers(0, 255, (64, 64), dtype=np.uint8))
    path = tmp_path / "t001.tif"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    def read_all() -> None:
        list(open_images(tmp_path))

    assert "t001.tif" in _error(read_all)


def test_unsupported_pixel_type(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "t000.tif", np.zeros((4, 4), np.complex64))
    assert "unsupported pixel type" in _error(lambda: open_images(tmp_path))


def test_tracks_round_trip(tmp_path: Path) -> None:
    tracks = [Track(2, 3, 5, 1), Track(1, 0, 2, 0), Track(3, 3, 4, 1)]
    write_tracks(tmp_path / "res_track.txt", tracks)
    assert (tmp_path / "res_track.txt").read_text().splitlines()[0] == "1 0 2 0"
    assert read_tracks(tmp_path / "res_track.txt") == sorted(tracks)


@pytest.mark.parametrize(
    "line", ["1 0 5", "1 0 5 0 7", "1 0 x 0", "1 0 5.5 0", "0 0 5 0", "2 -1 5 0", "2 0 5 -3"]
)
def test_bad_track_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "res_track.txt"
    path.write_text(f"1 0 5 0\n\n{line}\n")
    message = _error(lambda: read_tracks(path))
    assert "res_track.txt" in message and "line 3" in message


def test_missing_track_file(tmp_path: Path) -> None:
    assert "track file not found" in _error(lambda: read_tracks(tmp_path / "res_track.txt"))


def test_write_mask_rules(tmp_path: Path) -> None:
    write_mask(tmp_path / "mask000.tif", np.array([[0, 1000]], dtype=np.int64))
    assert read_tiff(tmp_path / "mask000.tif").dtype == np.uint16
    assert "integer" in _error(lambda: write_mask(tmp_path / "m.tif", np.zeros((2, 2))))
    too_big = np.array([[70000]], dtype=np.int64)
    assert "0..65535" in _error(lambda: write_mask(tmp_path / "m.tif", too_big))


def test_atomic_dir_leaves_nothing_on_error(tmp_path: Path) -> None:
    final = tmp_path / "01_RES"
    with pytest.raises(RuntimeError), atomic_output_dir(final) as tmp:
        (tmp / "mask000.tif").write_bytes(b"half")
        raise RuntimeError("tracker crashed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_never_overwrites_by_accident(tmp_path: Path) -> None:
    final = tmp_path / "01_RES"
    final.mkdir()
    (final / "old.txt").write_text("keep me")
    assert "already exists" in _error(lambda: atomic_output_dir(final).__enter__())
    with pytest.raises(RuntimeError), atomic_output_dir(final, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("failed half-way")
    assert [p.name for p in tmp_path.iterdir()] == ["01_RES"]
    assert (final / "old.txt").read_text() == "keep me"
    with atomic_output_dir(final, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["01_RES"]


def _labels(n_frames: int) -> list[np.ndarray]:
    frames = []
    for t in range(n_frames):
        frame = np.zeros((8, 8), np.int32)
        frame[1:3, 1:3] = 1
        if t >= 2:
            frame[5:7, 5:7] = 2
        frames.append(frame)
    return frames


def test_write_result_streams_masks_then_tracks(tmp_path: Path) -> None:
    spans = LabelSpans()
    out = write_result(
        tmp_path / "01_RES", spans.wrap(iter(_labels(4))), _LazyTracks(spans), n_frames=4
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "mask000.tif",
        "mask001.tif",
        "mask002.tif",
        "mask003.tif",
        "res_track.txt",
    ]
    assert read_tracks(out / "res_track.txt") == [Track(1, 0, 3, 0), Track(2, 2, 3, 0)]
    assert open_masks(out).dtype == np.uint16
    assert tracks_from_masks(open_masks(out)) == {1: (0, 3), 2: (2, 3)}


class _LazyTracks:
    """Tracks that only exist once the masks were streamed (as a tracker would produce)."""

    def __init__(self, spans: LabelSpans) -> None:
        self.spans = spans

    def __iter__(self):
        return iter(self.spans.tracks())


@pytest.mark.parametrize("n_frames", [3, 5])
def test_write_result_wrong_frame_count_leaves_nothing(tmp_path: Path, n_frames: int) -> None:
    message = _error(lambda: write_result(tmp_path / "R", _labels(4), [], n_frames=n_frames))
    assert f"n_frames={n_frames}" in message
    assert list(tmp_path.iterdir()) == []


def test_write_result_error_while_writing_leaves_nothing(tmp_path: Path) -> None:
    """A frame that fails in the writer thread stops the result; no folder is left."""
    frames = _labels(6)
    frames[2] = frames[2] * 70000  # does not fit uint16: write_mask refuses it

    def reused_buffer():  # the producer overwrites its array after each yield
        buffer = np.zeros((8, 8), np.int32)
        for frame in frames:
            buffer[...] = frame
            yield buffer

    assert "0..65535" in _error(
        lambda: write_result(tmp_path / "R", reused_buffer(), [], n_frames=6)
    )
    assert list(tmp_path.iterdir()) == []
    frames[2] = _labels(6)[2]
    write_result(tmp_path / "R", reused_buffer(), [], n_frames=6)
    assert [int(m.max()) for m in open_masks(tmp_path / "R")] == [1, 1, 2, 2, 2, 2]


def test_write_result_needs_overwrite(tmp_path: Path) -> None:
    write_result(tmp_path / "R", _labels(2), [Track(1, 0, 1)], n_frames=2)
    assert "already exists" in _error(lambda: write_result(tmp_path / "R", [], [], n_frames=2))
    write_result(tmp_path / "R", _labels(3), [Track(1, 0, 2)], n_frames=3, overwrite=True)
    assert len(open_masks(tmp_path / "R")) == 3
