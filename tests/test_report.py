"""The run report, its lineage forest and error list, and overlay movies.

Crafted data with one error of each kind checks that every error is found where it happens;
real results (../shared/ctc, skipped where absent) check the forest at scale and that the
page renders in a real headless browser (Chromium, skipped where absent).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from inference.cli import main
from inference.io import (
    Track,
    frame_name,
    open_images,
    open_masks,
    read_tracks,
    write_mask,
    write_tiff,
    write_tracks,
)
from inference.measures import evaluate
from inference.report import analyse_errors, layout_forest, plot_forest, summarize
from inference.report.forest import forest_rows
from inference.report.overlay_movie import (
    MovieOptions,
    outline,
    render_frames,
    track_colour,
    write_movie,
)

ROOT = Path(__file__).resolve().parents[1]
CTC = ROOT.parent / "shared" / "ctc"
HELA = CTC / "Fluo-N2DL-HeLa-01_RES-example" / "01_RES"
SIM = CTC / "Fluo-N2DH-SIM+"
SAMPLE = ROOT / "data" / "sample" / "Sim-N2DH"
PARAMS = ROOT / "parameters" / "Fluo-N2DH-SIM+"

SHAPE = (48, 64)
#: label -> (begin, end, parent, y, x): a 6x6 square at (y, x) in frames begin..end.
GT = {
    1: (0, 2, 0, 4, 4),  # divides into 2 and 3
    2: (3, 5, 1, 4, 4),
    3: (3, 5, 1, 4, 14),
    4: (0, 5, 0, 20, 4),
    5: (0, 5, 0, 36, 4),
}
#: The same cells, tracked with one error of each kind.
RESULT = {
    1: (0, 5, 0, 4, 4),  # missed division: 1 goes on as daughter 2, daughter 3 is a new track
    6: (3, 5, 0, 4, 14),
    4: (0, 2, 0, 20, 4),  # identity switch: GT 4 becomes result 7 at frame 3
    7: (3, 5, 0, 20, 4),
    5: (0, 2, 0, 36, 4),  # false division: 5 -> 8 (itself) and 9 (a cell that is not there)
    8: (3, 5, 5, 36, 4),
    9: (3, 5, 5, 36, 40),
}


def _write(folder: Path, cells: dict, prefix: str, depth: int | None = None) -> Path:
    folder.mkdir(parents=True)
    for t in range(6):
        frame = np.zeros(((depth,) if depth else ()) + SHAPE, np.uint16)
        for label, (begin, end, _, y, x) in cells.items():
            if begin <= t <= end:
                frame[..., y : y + 6, x : x + 6] = label
        write_mask(folder / frame_name(prefix, t, 6), frame)
    name = "man_track.txt" if prefix == "man_track" else "res_track.txt"
    write_tracks(folder / name, [Track(k, b, e, p) for k, (b, e, p, _, _) in cells.items()])
    return folder


@pytest.fixture
def crafted(tmp_path: Path) -> dict[str, Path]:
    """A ground truth, a result with three errors, and raw frames (noise plus the cells)."""
    gt = _write(tmp_path / "01_GT" / "TRA", GT, "man_track").parent
    res = _write(tmp_path / "01_RES", RESULT, "mask")
    images = tmp_path / "01"
    images.mkdir()
    rng = np.random.default_rng(0)
    for t, mask in enumerate(open_masks(res)):
        write_tiff(images / frame_name("t", t, 6), (rng.normal(100, 5, SHAPE) + 80 * (mask > 0)))
    return {"gt": gt, "res": res, "images": images}


def _tracks(cells: dict) -> list[Track]:
    return [Track(k, b, e, p) for k, (b, e, p, _, _) in cells.items()]


def test_every_error_is_found_with_its_frame_and_position(crafted):
    found = analyse_errors(crafted["res"], crafted["gt"])
    listed = [(e.kind, e.frame, e.position, e.gt_label, e.res_label) for e in found.errors]
    assert listed == [
        ("missed division", 3, (6.5, 6.5), 1, 1),  # the GT parent's centre in frame 2
        ("false division", 3, (38.5, 6.5), 5, 5),  # the result parent's centre in frame 2
        ("identity switch", 3, (22.5, 6.5), 4, 7),  # GT 4's centre where it switches
    ]
    assert found.counts == {"missed division": 1, "false division": 1, "identity switch": 1}
    assert (found.gt_divisions, found.res_divisions, found.matched_divisions) == (1, 1, 0)
    assert (found.missed_cells, found.false_cells) == (0, 3)  # result 9 in frames 3-5
    # the division errors are exactly the CTC's BC(0) false negatives and false positives
    scores = evaluate(crafted["res"], crafted["gt"], metrics=["BC(0)"])
    assert (scores["fn_div(0)"], scores["fp_div(0)"]) == (1, 1)


def test_a_perfect_result_has_no_errors(crafted, tmp_path):
    perfect = _write(tmp_path / "perfect", GT, "mask")
    found = analyse_errors(perfect, crafted["gt"])
    assert found.errors == [] and found.matched_divisions == 1


def test_forest_layout_forks_at_divisions_and_keeps_a_row_across_gaps(tmp_path):
    tracks = [
        Track(1, 0, 3),
        Track(2, 4, 9, 1),
        Track(3, 4, 6, 1),
        Track(4, 8, 9, 3),  # continues 3 after missed frame 7
        Track(5, 2, 9),
    ]
    layout = layout_forest(tracks)
    assert len(layout) == len(tracks)
    assert forest_rows(layout) == 3  # leaves 2, 4 and 5
    rows = {label: node.row for label, node in layout.items()}
    assert rows[4] == rows[3] and rows[1] == (rows[2] + rows[3]) / 2
    assert {node.tree for node in layout.values()} == {1, 5}
    png = plot_forest(layout, tmp_path / "forest.png", n_frames=10)
    assert Image.open(png).size[0] > 500


def test_summary_counts_from_the_track_file():
    summary = summarize(_tracks(RESULT), n_frames=6)
    assert (summary.n_tracks, summary.n_divisions, summary.n_roots) == (7, 1, 5)
    assert summary.cells.tolist() == [3, 3, 3, 5, 5, 5]
    assert sorted(summary.lengths.tolist()) == [3, 3, 3, 3, 3, 3, 6]


def test_report_command_writes_a_page_with_errors_pictures_and_movie(crafted, tmp_path):
    out = tmp_path / "report"
    args = ["report", str(crafted["res"]), "--gt", str(crafted["gt"])]
    args += ["--images", str(crafted["images"]), "--movie", "--out", str(out)]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert "7 tracks, 1 divisions" in run.output and "1 identity switches" in run.output
    assert "match to GT: 6/6" in run.output  # progress lines where no terminal is attached
    page = (out / "index.html").read_text()
    assert "<td>divisions</td><td>1</td>" in page.replace(' class="num"', "")
    assert "Missed divisions (1)" in page and "Identity switches (1)" in page
    assert 'id="measures"' in page and "TRA" in page
    for name in ("lineage.png", "summary.png", "movie.gif"):
        assert (out / name).stat().st_size > 1000 and f'src="{name}"' in page
    errors = pd.read_csv(out / "errors.csv")
    assert errors[["kind", "frame", "y", "x"]].values.tolist() == [
        ["missed division", 3, 6.5, 6.5],
        ["false division", 3, 38.5, 6.5],
        ["identity switch", 3, 22.5, 6.5],
    ]
    assert len(list(out.glob("crop_*.png"))) == 3
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_report_without_ground_truth_needs_only_the_result(crafted, tmp_path):
    run = CliRunner().invoke(main, ["report", str(crafted["res"]), "--out", str(tmp_path / "r")])
    assert run.exit_code == 0, run.output
    page = (tmp_path / "r" / "index.html").read_text()
    assert "lineage.png" in page and "CTC measures" not in page
    movie = CliRunner().invoke(main, ["report", str(crafted["res"]), "--movie", "--out", "x"])
    assert movie.exit_code == 2 and "--images" in movie.output


def test_movie_outlines_each_cell_in_its_track_colour(crafted, tmp_path):
    images, masks = open_images(crafted["images"]), open_masks(crafted["res"])
    tracks = read_tracks(crafted["res"] / "res_track.txt")
    gif = write_movie(images, masks, tracks, tmp_path / "m.gif", MovieOptions(ids=False))
    movie = Image.open(gif)
    assert movie.n_frames == 6 and movie.size == SHAPE[::-1]
    movie.seek(4)
    frame = np.asarray(movie.convert("RGB"))
    mask = masks.read(4)
    for label in (7, 8, 9):  # (1 and 6 sit under the frame stamp at the top)
        edge = outline(mask) & (mask == label)
        assert (frame[edge] == track_colour(label)).all(axis=1).mean() > 0.8, label


def test_movie_of_a_3d_sequence_is_a_max_projection(tmp_path):
    """Each cell lies in one z-slice of its own (label % 3) and the image is bright only
    there: the movie must show every cell, bright and outlined, as a max projection does."""
    res = _write(tmp_path / "res3d", RESULT, "mask", depth=3)
    images = tmp_path / "img3d"
    images.mkdir()
    for t, mask in enumerate(open_masks(res)):
        mask = mask * (mask % 3 == np.arange(3)[:, None, None])
        write_mask(res / frame_name("mask", t, 6), mask)
        write_tiff(images / frame_name("t", t, 6), (100 + 150 * (mask > 0)).astype(np.uint16))
    tracks = read_tracks(res / "res_track.txt")
    options = MovieOptions(ids=False, tail=0)
    frame = list(render_frames(open_images(images), open_masks(res), tracks, options))[4]
    assert frame.shape == (*SHAPE, 3)
    for label in (7, 8, 9):  # in slices 1, 2 and 0 (1 and 6 sit under the frame stamp)
        _, _, _, y, x = RESULT[label]
        assert (frame[y + 2 : y + 4, x + 2 : x + 4] > 200).all(), label  # bright inside
        assert (frame[y, x + 1 : x + 5] == track_colour(label)).all(), label  # outlined
    assert (frame[30, 30] < 60).all()  # background stays dark
    args = ["movie", str(res), "--images", str(images), "--out", str(tmp_path / "m.gif")]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert Image.open(tmp_path / "m.gif").size == SHAPE[::-1]


def test_movie_as_mp4(crafted, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "m.mp4"
    args = ["movie", str(crafted["res"]), "--images", str(crafted["images"]), "--out", str(out)]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert out.stat().st_size > 1000


def test_movie_of_the_embedded_sample_stays_small(tmp_path):
    res = tmp_path / "01_RES"
    export = ["export-gt", str(SAMPLE / "01_GT"), "--out", str(res)]
    assert CliRunner().invoke(main, export).exit_code == 0
    out = tmp_path / "sample.gif"
    args = ["movie", str(res), "--images", str(SAMPLE / "01"), "--out", str(out)]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert Image.open(out).n_frames == 40 and out.stat().st_size < 3e6


@pytest.mark.realdata
def test_report_of_a_large_real_lineage(tmp_path):
    if not HELA.is_dir():
        pytest.skip(f"{HELA} not found")
    tracks = read_tracks(HELA / "res_track.txt")
    layout = layout_forest(tracks)
    assert len(layout) == len(tracks) == 285
    start = time.perf_counter()
    run = CliRunner().invoke(main, ["report", str(HELA), "--out", str(tmp_path / "r")])
    seconds = time.perf_counter() - start
    assert run.exit_code == 0, run.output
    assert "285 tracks, 106 divisions over 92 frames" in run.output
    width, height = Image.open(tmp_path / "r" / "lineage.png").size
    assert height > 1500 and width > 1000  # a row per leaf, tall enough to read
    assert seconds < 30


def _held_out_sim(tmp_path: Path, start: int = 52) -> Path:
    """Frames 52.. of Fluo-N2DH-SIM+ 01 (no model trained on them) with their GT, cut out."""
    images = open_images(SIM / "01")
    tra = open_masks(SIM / "01_GT" / "TRA", "man_track")
    n = len(images) - start
    out = tmp_path / "sim"
    (out / "01").mkdir(parents=True)
    (out / "01_GT" / "TRA").mkdir(parents=True)
    for k in range(n):
        shutil.copy(images.frames[start + k].path, out / "01" / frame_name("t", k, n))
        write_mask(out / "01_GT" / "TRA" / frame_name("man_track", k, n), tra.read(start + k))
    kept = [
        Track(
            t.label,
            max(t.begin, start) - start,
            t.end - start,
            t.parent if t.begin >= start else 0,
        )
        for t in read_tracks(SIM / "01_GT" / "TRA" / "man_track.txt")
        if t.end >= start
    ]
    labels = {t.label for t in kept}
    kept = [t if t.parent in labels else Track(t.label, t.begin, t.end) for t in kept]
    write_tracks(out / "01_GT" / "TRA" / "man_track.txt", kept)
    return out


@pytest.mark.realdata
def test_report_opens_in_a_headless_browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    if not SIM.is_dir():
        pytest.skip(f"{SIM} not found")
    data = _held_out_sim(tmp_path)
    res = tmp_path / "01_RES"
    track = ["track", "--images", str(data / "01"), "--masks", str(data / "01_GT" / "TRA")]
    track += ["--model", str(PARAMS), "--out", str(res)]
    assert CliRunner().invoke(main, track).exit_code == 0
    out = tmp_path / "report"
    args = ["report", str(res), "--gt", str(data / "01_GT"), "--images", str(data / "01")]
    run = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert run.exit_code == 0, run.output
    tracks = read_tracks(res / "res_track.txt")

    browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    browser += [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400"]
    url = (out / "index.html").as_uri()
    dom = subprocess.run(
        [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*browser, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True
    )
    # the browser ran the page: every picture loaded, the tables are there
    loaded = dom.split('data-images-loaded="')[1].split('"')[0]
    assert loaded.split("/")[0] == loaded.split("/")[1] != "0", loaded
    assert 'id="summary"' in dom and 'id="measures"' in dom and 'id="lineage"' in dom
    assert f"<td>tracks</td><td>{len(tracks)}</td>" in dom
    # and drew it: dark table text at the top, the forest's coloured lines below it
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (1400, 1280)
    top, rest = pixels[:350], pixels[350:]
    assert (top.max(axis=2) < 80).sum() > 2000  # text of the summary and measures tables
    saturation = rest.max(axis=2) - rest.min(axis=2)
    assert (saturation > 100).sum() > 5000  # the lineage lines, one colour per lineage
    # the error list is the CTC's own count of division errors
    found = analyse_errors(res, data / "01_GT")
    scores = evaluate(res, data / "01_GT", metrics=["BC(0)"])
    assert found.counts["missed division"] == scores["fn_div(0)"]
    assert found.counts["false division"] == scores["fp_div(0)"]
