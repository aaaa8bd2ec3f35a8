"""`write_report`: one folder with index.html and its pictures, from a result folder and,
optionally, its images (movie, error pictures), its ground truth (CTC measures, errors) and
its edge file (link probabilities)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from inference import __version__
from inference.cells.positions import frame_positions, position_columns
from inference.ctc_rules import is_valid, validate_result
from inference.errors import CTCError
from inference.io import atomic_output_dir, list_frames, open_images, open_masks, read_tracks
from inference.io.edge_file import read_edges
from inference.io.result import RES_TRACK_FILE
from inference.measures import evaluate
from inference.report import html
from inference.report.forest import Mark, layout_forest, plot_forest
from inference.report.overlay_movie import MovieOptions, write_movie
from inference.report.summary import Summary, plot_summary, summarize
from inference.report.tracking_errors import (
    KINDS,
    PLURALS,
    ErrorAnalysis,
    TrackingError,
    analyse_errors,
)

#: The CTC measures shown (all are computed; `gnntrack evaluate` prints every one).
SHOWN_MEASURES = ("TRA", "DET", "SEG", "LNK", "BC(0)", "BC(1)", "CT", "TF", "CCA", "BIO(0)")
#: Rows per error kind in the page (all of them go to errors.csv).
ERROR_ROWS = 60
#: Errors per kind that get a picture.
ERROR_PICTURES = 12


@dataclass
class Report:
    """What `write_report` wrote and found."""

    path: Path
    summary: Summary
    n_forest_nodes: int
    errors: ErrorAnalysis | None
    seconds: float


def write_report(
    res_dir: str | Path,
    out_dir: str | Path,
    *,
    images_dir: str | Path | None = None,
    gt_dir: str | Path | None = None,
    edges_csv: str | Path | None = None,
    movie: bool = False,
    movie_options: MovieOptions | None = None,
    overwrite: bool = False,
) -> Report:
    """Write `out_dir`/index.html and its PNGs (and movie.gif); returns what it found."""
    start = time.perf_counter()
    res_dir = Path(res_dir)
    tracks = read_tracks(res_dir / RES_TRACK_FILE)
    n_frames = len(list_frames(res_dir, "mask", contiguous=False))
    if movie and images_dir is None:
        raise CTCError("--movie needs --images (the raw frames to draw on)")
    images = open_images(images_dir) if images_dir is not None else None
    edges = read_edges(edges_csv) if edges_csv is not None else None
    summary = summarize(tracks, n_frames)
    layout = layout_forest(tracks)
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        body: list[str] = []
        violations = validate_result(res_dir, images_dir=images_dir)
        cards = [html.section("Summary", html.table(summary.rows(), table_id="summary"))]
        analysis = None
        if gt_dir is not None:
            cards.append(_measures(res_dir, gt_dir, violations))
            if is_valid(violations):
                try:
                    analysis = analyse_errors(res_dir, gt_dir)
                    cards.append(_error_counts(analysis))
                except CTCError as exc:
                    cards.append(html.section("Errors", html.paragraph(f"not listed: {exc}")))
        if violations:
            body.append(_violations(violations))
        body.append(f'<div class="cards">{"".join(cards)}</div>')
        marks = _marks(analysis)
        name = "/".join(res_dir.resolve().parts[-2:])
        plot_forest(layout, tmp / "lineage.png", n_frames, marks, title=name)
        body.append(
            html.section(
                "Lineage",
                html.paragraph(
                    "Time runs left to right; one line per track, labelled with its id at its "
                    "end; a fork is a division; a dotted joint links a track continued after "
                    "missed frames; one colour per lineage."
                    + (" Markers: the errors listed below." if marks else ""),
                    "note",
                ),
                html.image("lineage.png", "lineage forest", image_id="lineage"),
            )
        )
        plot_summary(summary, tmp / "summary.png")
        body.append(
            html.section("Tracks and cells", html.image("summary.png", "track lengths, cells"))
        )
        if movie and images is not None:
            masks = open_masks(res_dir, "mask")
            write_movie(images, masks, tracks, tmp / "movie.gif", movie_options or MovieOptions())
            body.append(html.section("Movie", html.image("movie.gif", "overlay movie")))
        if edges is not None:
            body.append(_links(edges, res_dir, tmp))
        if analysis is not None:
            body.append(_error_lists(analysis, images, res_dir, tmp))
        meta = (
            f"result <code>{escape(str(res_dir))}</code>"
            + (f" &middot; images <code>{escape(str(images_dir))}</code>" if images_dir else "")
            + (f" &middot; ground truth <code>{escape(str(gt_dir))}</code>" if gt_dir else "")
            + f" &middot; gnntrack {escape(__version__)}, {time.strftime('%Y-%m-%d %H:%M')}"
        )
        page = html.page(f"Tracking report: {name}", meta, body)
        (tmp / "index.html").write_text(page, encoding="utf-8")
    seconds = time.perf_counter() - start
    return Report(Path(out_dir) / "index.html", summary, len(layout), analysis, seconds)


def _violations(violations: list) -> str:
    errors = [v for v in violations if v.severity == "error"]
    text = (
        f"The result breaks {len(errors)} CTC format rule(s); the CTC would refuse it. "
        if errors
        else "The result is valid, with warnings. "
    ) + "; ".join(str(v) for v in violations[:5])
    return f'<p class="warn">{escape(text)}</p>'


def _measures(res_dir: Path, gt_dir: str | Path, violations: list) -> str:
    if not is_valid(violations):
        return html.section("CTC measures", html.paragraph("not computed: invalid result"))
    try:
        scores = evaluate(res_dir, gt_dir)
    except CTCError as exc:
        return html.section("CTC measures", html.paragraph(f"not computed: {exc}"))
    rows = [(name, scores.get(name)) for name in SHOWN_MEASURES if name in scores]
    return html.section("CTC measures", html.table(rows, ("measure", "value"), "measures"))


def _error_counts(a: ErrorAnalysis) -> str:
    rows = [
        ("GT divisions / result divisions / matched (BC(0))",
         f"{a.gt_divisions} / {a.res_divisions} / {a.matched_divisions}"),
        *((PLURALS[kind], a.counts[kind]) for kind in KINDS),
        ("GT cells missed (all frames)", f"{a.missed_cells} of {a.gt_cells}"),
        ("result cells matching no GT cell", f"{a.false_cells} of {a.res_cells}"),
    ]  # fmt: skip
    return html.section("Errors against the ground truth", html.table(rows, table_id="counts"))


def _marks(analysis: ErrorAnalysis | None) -> list[Mark]:
    if analysis is None:
        return []
    return [Mark(e.res_label, e.frame, e.kind) for e in analysis.errors if e.res_label]


def _where(position: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.0f}" for v in position) if position else "-"


def _error_lists(a: ErrorAnalysis, images, res_dir: Path, tmp: Path) -> str:
    table = pd.DataFrame(
        [
            {
                "kind": e.kind,
                "frame": e.frame,
                **{axis: (e.position[k] if e.position else None) for k, axis in enumerate(a.axes)},
                "gt_track": e.gt_label,
                "result_track": e.res_label,
                "detail": e.detail,
            }
            for e in a.errors
        ],
        columns=["kind", "frame", *a.axes, "gt_track", "result_track", "detail"],
    )
    table.to_csv(tmp / "errors.csv", index=False, float_format="%.1f")
    pictures: dict[int, str] = {}
    listed: dict[str, list[tuple[int, TrackingError]]] = {
        kind: [(i, e) for i, e in enumerate(a.errors) if e.kind == kind] for kind in KINDS
    }
    if images is not None:
        from inference.report.error_pictures import error_crops

        chosen = [i for kind in KINDS for i, _ in listed[kind][:ERROR_PICTURES]]
        found = error_crops(images, open_masks(res_dir, "mask"), [a.errors[i] for i in chosen], tmp)
        pictures = {chosen[k]: name for k, name in found.items()}
    parts = [
        html.paragraph(
            "Every error, with the frame and position (pixels, "
            + ", ".join(a.axes)
            + ") of the cell concerned; all of them are in errors.csv."
            + (" Pictures: the frame before and the frame of the error." if pictures else ""),
            "note",
        )
    ]
    header = ["frame", f"position ({', '.join(a.axes)})", "GT track", "result track", "what"]
    for kind in KINDS:
        items = listed[kind]
        rows = []
        for i, e in items[:ERROR_ROWS]:
            row: list[object] = [e.frame, _where(e.position), e.gt_label, e.res_label, e.detail]
            if pictures:
                row.append(html.image(pictures[i], kind, "crop") if i in pictures else "")
            rows.append(row)
        more = len(items) - len(rows)
        content = (
            html.table(rows, header + (["picture"] if pictures else []), kind.replace(" ", "-"))
            if rows
            else html.paragraph("none")
        )
        if more > 0:
            content += html.paragraph(f"... and {more} more in errors.csv", "note")
        parts.append(html.section(f"{PLURALS[kind].capitalize()} ({len(items)})", content, level=3))
    return html.section("Errors, one by one", *parts)


def _links(edges: pd.DataFrame, res_dir: Path, tmp: Path) -> str:
    """Histogram of the linked edges' probabilities and the least certain links."""
    from matplotlib.figure import Figure

    linked = edges[edges["linked"] == 1].sort_values("probability")
    fig = Figure(figsize=(6, 2.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.hist(edges["probability"], bins=np.linspace(0, 1, 41), color="#bbbbbb", label="candidates")
    ax.hist(linked["probability"], bins=np.linspace(0, 1, 41), color="#4c72b0", label="linked")
    ax.set_yscale("log")
    ax.set_xlabel("GNN link probability")
    ax.legend(fontsize=8)
    fig.savefig(tmp / "links.png")
    worst = linked.head(15)
    masks = open_masks(res_dir, "mask")
    rows = []
    for frame, group in worst.groupby("t_target", sort=True):
        table = frame_positions(masks.read(int(frame)), int(frame)).set_index("label")
        axes = position_columns(table)
        for _, e in group.iterrows():
            where = table.loc[e.label_target, axes] if e.label_target in table.index else None
            rows.append(
                (
                    int(e.t_source),
                    int(e.t_target),
                    f"{int(e.label_source)} -> {int(e.label_target)}",
                    "-" if where is None else _where(tuple(where)),
                    float(e.probability),
                )
            )
    rows.sort(key=lambda r: r[-1])
    return html.section(
        "Link probabilities",
        html.paragraph(
            f"{len(edges)} candidate links scored by the GNN, {len(linked)} in the lineage. "
            "The least certain links of the lineage:",
            "note",
        ),
        html.image("links.png", "link probabilities"),
        html.table(rows, ("from frame", "to frame", "tracks", "position", "probability"), "links"),
    )
