"""Every CTC measure of a result against ground truth, computed by py-ctcmetrics.

py-ctcmetrics (the CTC's own Python implementation) does the scoring; this module gives it
checked input and a clean output: the result is validated first (py-ctcmetrics would silently
score an invalid result as all-None, or fail on an assert), frame counts and shapes are
checked, its prints and warnings are kept off stdout, and numpy scalars become plain numbers.

One part is replaced: py-ctcmetrics matches masks with scikit-learn's `confusion_matrix`,
about 0.3 s per 1-megapixel frame (28 s for GOWT1 01, 2 s here), and adds a label offset in
uint16, which wraps when GT and result labels together pass 65535. `match_labels` computes the
same lists (same order, same floats) with `np.unique` on the overlap pixels, in milliseconds
and without the overflow.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from os.path import basename
from pathlib import Path

import numpy as np
from ctc_metrics.metrics import valid
from ctc_metrics.scripts.evaluate import calculate_metrics
from ctc_metrics.utils.filesystem import parse_masks
from ctc_metrics.utils.representations import match as ctc_match

from inference.ctc_rules import validate_result
from inference.errors import CTCError
from inference.io import list_frames, read_tiff, read_tracks
from inference.io.result import RES_TRACK_FILE

#: The CTC measures, in py-ctcmetrics' spelling; BC, BIO and OP_CLB for i = 0..3.
DEFAULT_METRICS: tuple[str, ...] = (
    ("TRA", "DET", "SEG", "LNK", "OP_CTB", "OP_CSB")
    + tuple(f"BC({i})" for i in range(4))
    + ("CT", "TF", "CCA")
    + tuple(f"BIO({i})" for i in range(4))
    + tuple(f"OP_CLB({i})" for i in range(4))
)
#: Further py-ctcmetrics measures, computed on request only (each adds several keys).
EXTRA_METRICS = ("MOTA", "HOTA", "IDF1", "CHOTA", "MTML", "FAF")
_PLAIN = ("TRA", "DET", "SEG", "LNK", "OP_CTB", "OP_CSB", "CT", "TF", "CCA")
_INDEXED = ("BC", "BIO", "OP_CLB")
_NEEDS_SEG = ("SEG", "OP_CTB", "OP_CSB")
_BIO_PARTS = ["CT", "TF", "BC", "CCA"]


def normalize_metrics(metrics: list[str] | tuple[str, ...] | None) -> list[str]:
    """Canonical names ('tra' -> 'TRA', 'bc' -> BC(0..3), 'bc(2)' -> 'BC(2)'); unknown: CTCError."""
    if metrics is None:
        return list(DEFAULT_METRICS)
    names: list[str] = []
    for raw in metrics:
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name = item.upper()
            match = re.fullmatch(r"([A-Z_]+)\((\d+)\)", name)
            if name in _PLAIN or name in EXTRA_METRICS:
                found = [name]
            elif name in _INDEXED:
                found = [f"{name}({i})" for i in range(4)]
            elif match and match.group(1) in _INDEXED:
                found = [f"{match.group(1)}({int(match.group(2))})"]
            else:
                known = ", ".join(_PLAIN + tuple(f"{n}(i)" for n in _INDEXED) + EXTRA_METRICS)
                raise CTCError(f"unknown measure {item!r}; known: {known}")
            names += [n for n in found if n not in names]
    if not names:
        raise CTCError("no measure asked for")
    return names


def evaluate(
    res_dir: str | Path,
    gt_dir: str | Path,
    metrics: list[str] | tuple[str, ...] | None = None,
    threads: int = 1,
) -> dict[str, float | int | None]:
    """Score the result folder `res_dir` against `gt_dir` (holding TRA/ and optionally SEG/).

    Returns measure -> value (plus AOGM and division-count details), None where a measure is
    undefined (BC without GT divisions, CCA without complete GT cell cycles, SEG measures when
    the GT has no SEG folder). Bad folders, a frame-count mismatch or an invalid result raise
    CTCError. `threads` > 1 (0 = all CPUs) matches frames in parallel.
    """
    res_dir, gt_dir = Path(res_dir), Path(gt_dir)
    explicit = metrics is not None
    wanted = normalize_metrics(metrics)
    for folder, what in ((res_dir, "result folder"), (gt_dir, "ground-truth folder")):
        if not folder.is_dir():
            raise CTCError(f"{what} not found", folder)
    tra_dir, seg_dir = gt_dir / "TRA", gt_dir / "SEG"
    if not (tra_dir / "man_track.txt").is_file():
        raise CTCError("ground truth needs TRA/man_track.txt and TRA/man_track000.tif ...", gt_dir)
    has_seg = seg_dir.is_dir() and bool(parse_masks(str(seg_dir)))
    if explicit and not has_seg and any(m in _NEEDS_SEG for m in wanted):
        raise CTCError("SEG, OP_CTB and OP_CSB need a SEG folder in the ground truth", gt_dir)

    gt_frames = [f.path for f in list_frames(tra_dir, "man_track")]
    res_frames = [f.path for f in list_frames(res_dir, "mask", contiguous=False)]
    if len(res_frames) != len(gt_frames):
        raise CTCError(
            f"{len(res_frames)} mask frames, but the ground truth has {len(gt_frames)}", res_dir
        )
    errors = validate_result(res_dir)
    if errors:
        shown = "; ".join(str(v) for v in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise CTCError(f"invalid result, {len(errors)} violations: {shown}{more}", res_dir)

    if not read_tracks(res_dir / RES_TRACK_FILE):
        raise CTCError(
            "the result holds no cell in any frame; py-ctcmetrics cannot score that "
            "(by the CTC definitions every measure is 0)",
            res_dir,
        )
    computed = [m for m in wanted if has_seg or m not in _NEEDS_SEG]
    internal = _with_dependencies(computed)
    comp_tracks = _track_array(res_dir / RES_TRACK_FILE)
    ref_tracks = _track_array(tra_dir / "man_track.txt")
    traj: dict = {}
    segm: dict = {}
    is_valid = 1
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if any(m not in ("SEG", "CCA") for m in internal):
            traj = match_frames(list(zip(gt_frames, res_frames, strict=True)), threads)
            is_valid = valid(res_frames, comp_tracks, traj["labels_comp"])
        if "SEG" in internal:
            segm = match_frames(_seg_pairs(seg_dir, res_frames), threads)
        if not is_valid:
            raise CTCError("py-ctcmetrics refuses this result as invalid", res_dir)
        results = calculate_metrics(comp_tracks, ref_tracks, traj, segm, internal, is_valid)
    return _select(results, wanted)


def match_frames(pairs: list[tuple[Path | str, Path | str]], threads: int = 1) -> dict:
    """py-ctcmetrics' per-frame matching data (labels, matched labels, IoUs) for (GT, result) pairs.

    A GT label matches the result label covering more than half of it, as in the CTC.
    """
    workers = (os.cpu_count() or 1) if threads == 0 else max(threads, 1)
    if workers > 1 and len(pairs) > 1:
        with ThreadPoolExecutor(workers) as pool:
            found = list(pool.map(lambda pair: _match_pair(*pair), pairs))
    else:
        found = [_match_pair(*pair) for pair in pairs]
    keys = ("labels_ref", "labels_comp", "mapped_ref", "mapped_comp", "ious")
    return {key: [item[i] for item in found] for i, key in enumerate(keys)}


def match_labels(ref: np.ndarray, comp: np.ndarray) -> tuple[list, list, list, list, list]:
    """Match one GT frame to one result frame, exactly as py-ctcmetrics' `match` does."""
    ref = np.asarray(ref).ravel().astype(np.int64)
    comp = np.asarray(comp).ravel().astype(np.int64)
    size_ref = np.bincount(ref)
    size_comp = np.bincount(comp)
    labels_ref = np.flatnonzero(size_ref)
    labels_comp = np.flatnonzero(size_comp)
    labels_ref, labels_comp = labels_ref[labels_ref > 0], labels_comp[labels_comp > 0]
    both = (ref > 0) & (comp > 0)
    width = int(comp.max(initial=0)) + 1
    pairs, overlap = np.unique(ref[both] * width + comp[both], return_counts=True)
    r, c = pairs // width, pairs % width
    hit = overlap / np.maximum(size_ref[r], 1) > 0.5
    r, c, overlap = r[hit], c[hit], overlap[hit]
    iou = overlap / np.maximum(size_ref[r] + size_comp[c] - overlap, 1)
    return labels_ref.tolist(), labels_comp.tolist(), r.tolist(), c.tolist(), iou.tolist()


def _match_pair(ref_path: Path | str, comp_path: Path | str) -> tuple[list, list, list, list, list]:
    if not Path(ref_path).exists():  # 3D SEG annotated per slice: py-ctcmetrics reads those
        return ctc_match(str(ref_path), str(comp_path))
    ref, comp = read_tiff(ref_path), read_tiff(comp_path)
    if ref.shape != comp.shape:
        raise CTCError(f"shape {comp.shape} differs from the ground truth's {ref.shape}", comp_path)
    return match_labels(ref, comp)


def _seg_pairs(seg_dir: Path, res_frames: list[Path]) -> list[tuple[str, Path]]:
    """(man_seg file, mask of the same frame), frames named as py-ctcmetrics reads them."""
    pairs = []
    for path in parse_masks(str(seg_dir)):
        index = int(basename(path).replace("man_seg", "").replace(".tif", "").replace("_", ""))
        if index >= len(res_frames):
            raise CTCError(f"SEG frame {index} is beyond the {len(res_frames)} frames", path)
        pairs.append((path, res_frames[index]))
    return pairs


def _track_array(path: Path) -> np.ndarray:
    rows = [[t.label, t.begin, t.end, t.parent] for t in read_tracks(path)]
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _with_dependencies(metrics: list[str]) -> list[str]:
    """The py-ctcmetrics metric list that computes `metrics` (it has implicit prerequisites)."""
    needs = {"LNK": ["DET"], "OP_CTB": ["SEG", "TRA"], "OP_CSB": ["SEG", "DET"]}
    internal: list[str] = []
    for name in metrics:
        extra = needs.get(name, [])
        if name.startswith("BIO("):
            extra = [*_BIO_PARTS, "BC(" + name[4:]]
        elif name.startswith("OP_CLB("):
            extra = ["BIO", "LNK", "DET", *_BIO_PARTS, "BC(" + name[7:]]
        internal += [n for n in (name, *extra) if n not in internal]
    return internal


def _details(name: str) -> list[str]:
    if name == "TRA":
        return ["AOGM", "AOGM_0"] + [f"AOGM_{k}" for k in ("NS", "FN", "FP", "ED", "EA", "EC")]
    if name.startswith("BC("):
        i = name[3:-1]
        return ["gt_divisions", f"tp_div({i})", f"fp_div({i})", f"fn_div({i})"]
    return []


def _select(results: dict, wanted: list[str]) -> dict[str, float | int | None]:
    """The asked-for measures with their details, in order, as plain JSON-able numbers."""
    out: dict[str, float | int | None] = {name: _plain(results.get(name)) for name in wanted}
    for name in wanted:
        for key in _details(name):
            if key in results:
                out.setdefault(key, _plain(results[key]))
    if any(name in EXTRA_METRICS for name in wanted):
        own = re.compile(
            r"^(AOGM.*|Valid|BC|BIO|gt_divisions|(tp|fp|fn)_div\(\d+\)|[A-Z_]+\(\d+\))$"
        )
        for key, value in results.items():
            if key not in out and key not in _PLAIN and not own.match(key):
                out[key] = _plain(value)
    return out


def _plain(value: object) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number
