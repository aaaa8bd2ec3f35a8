"""The lineage forest of a result: time across, one row per track, divisions as forks.

Layout: every tree is drawn leaf by leaf, depth first, so each leaf track gets a row of its
own and a parent sits midway between its children; a track that continues across a missed
frame (one child) keeps its parent's row. Trees are stacked in the order of their first
frame. With one row per leaf, 300 tracks and 100 divisions need about 200 rows, which a
tall PNG with thin lines keeps readable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.io import Track


@dataclass(frozen=True)
class ForestNode:
    """One track placed in the forest: `row` is its vertical position, `tree` its root's label."""

    label: int
    begin: int
    end: int
    parent: int
    row: float
    tree: int


@dataclass(frozen=True)
class Mark:
    """A point to highlight on the forest: track `label` at `frame`, in a named `kind`."""

    label: int
    frame: int
    kind: str


def layout_forest(tracks: Iterable[Track]) -> dict[int, ForestNode]:
    """Label -> ForestNode for every track; rows are 0, 1, ... from the top."""
    tracks = sorted(tracks)
    by_label = {t.label: t for t in tracks}
    children: dict[int, list[Track]] = defaultdict(list)
    for t in tracks:
        if t.parent in by_label:
            children[t.parent].append(t)
    for kids in children.values():
        kids.sort(key=lambda t: (t.begin, t.label))
    roots = [t for t in tracks if t.parent not in by_label]
    roots.sort(key=lambda t: (t.begin, t.label))
    rows: dict[int, float] = {}
    tree_of: dict[int, int] = {}
    next_row = 0.0
    for root in roots:
        # iterative post-order: leaves take the next free row, parents the mean of children
        stack: list[tuple[Track, bool]] = [(root, False)]
        while stack:
            track, done = stack.pop()
            tree_of[track.label] = root.label
            kids = children.get(track.label, [])
            if not kids:
                rows[track.label] = next_row
                next_row += 1
            elif done:
                rows[track.label] = float(np.mean([rows[k.label] for k in kids]))
            else:
                stack.append((track, True))
                stack.extend((kid, False) for kid in reversed(kids))
    return {
        t.label: ForestNode(t.label, t.begin, t.end, t.parent, rows[t.label], tree_of[t.label])
        for t in tracks
    }


def forest_rows(layout: dict[int, ForestNode]) -> int:
    """How many rows the forest takes (its leaf count)."""
    return int(max((n.row for n in layout.values()), default=-1)) + 1


#: Marker style per mark kind: (matplotlib marker, colour, legend text).
MARK_STYLES = {
    "missed division": ("v", "#d62728", "missed division"),
    "false division": ("X", "#ff7f0e", "false division"),
    "identity switch": ("o", "#9467bd", "identity switch"),
}


def plot_forest(
    layout: dict[int, ForestNode],
    path: str | Path,
    n_frames: int,
    marks: Sequence[Mark] = (),
    title: str = "",
) -> Path:
    """Draw the forest to a PNG: a line per track, forks at divisions, marks on top."""
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    n_rows = max(forest_rows(layout), 1)
    height = min(max(2.5, 0.09 * n_rows + 1.2), 60.0)
    width = min(max(8.0, 0.06 * n_frames + 6.0), 16.0)
    fig = Figure(figsize=(width, height), dpi=110)
    ax = fig.add_axes((0.07, 0.6 / height, 0.88, 1 - 1.0 / height))
    palette = _tree_colours(layout)
    segments, colours, links, gap_links, link_colours, gap_colours = [], [], [], [], [], []
    for node in layout.values():
        colour = palette[node.tree]
        segments.append([(node.begin, node.row), (node.end + 0.9, node.row)])
        colours.append(colour)
        parent = layout.get(node.parent)
        if parent is None:
            continue
        joint = [(parent.end + 0.9, parent.row), (node.begin, node.row)]
        if parent.row == node.row:  # a continuation across a missed frame
            gap_links.append(joint)
            gap_colours.append(colour)
        else:
            links.append([(parent.end + 0.9, parent.row), (parent.end + 0.9, node.row)])
            links.append([(parent.end + 0.9, node.row), (node.begin, node.row)])
            link_colours += [colour, colour]
    line = 1.6 if n_rows < 80 else 1.0
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=line))
    ax.add_collection(LineCollection(links, colors=link_colours, linewidths=line * 0.7))
    ax.add_collection(
        LineCollection(gap_links, colors=gap_colours, linewidths=line * 0.7, linestyles=":")
    )
    font = 6.5 if n_rows < 120 else 5.0
    if n_rows <= 400:
        for node in layout.values():
            ax.text(node.end + 1.1, node.row, str(node.label), fontsize=font, va="center")
    for kind, (marker, colour, text) in MARK_STYLES.items():
        points = [
            (m.frame, layout[m.label].row) for m in marks if m.kind == kind and m.label in layout
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.scatter(xs, ys, marker=marker, s=36, c=colour, zorder=3, label=text)
    if marks:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, fontsize=7, frameon=False)
    ax.set_xlim(-0.5, n_frames * 1.06 + 1.8)  # room for the ids at the ends
    ax.set_ylim(n_rows - 0.5, -0.8)
    ax.set_xlabel("frame")
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.savefig(path)
    return Path(path)


def _tree_colours(layout: dict[int, ForestNode]) -> dict[int, tuple[float, ...]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    roots = sorted({n.tree for n in layout.values()}, key=lambda r: layout[r].row)
    return {root: cmap(i % 10) for i, root in enumerate(roots)}
