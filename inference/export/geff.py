"""GEFF (graph exchange file format, a zarr folder) export of a result, and its import.

Export: one node per cell and frame with properties `t`, (`z`,) `y`, `x` (centroid, pixels),
`track_id` (the CTC track label), `seg_id` (the cell's label in `mask###.tif`), `area`,
`tracklet_id` (tracks joined across missed frames) and `lineage_id` (root track), and one
edge per link in time, with `probability` (the GNN's) where an edge file is given. Written
with the `geff` package and checked by its own validation (structure, graph, tracklets,
lineages).

Import: a GEFF graph plus the label masks its `seg_id`s name becomes a CTC result. Tracks
are read off the graph: a cell continues its predecessor's track when it is that cell's only
successor, one frame later (and, where the graph has `track_id`, of the same track id);
otherwise it starts a track whose parent is its predecessor's. Track ids are kept where they
are consistent, else tracks are numbered 1, 2, ... in order of their first frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from inference import __version__
from inference.errors import CTCError
from inference.export.cell_graph import CellGraph, chain_ids, result_graph
from inference.io import Track, atomic_output_dir, open_masks, write_result
from inference.io.edge_file import read_edges
from inference.progress import progress

_NODE_PROPS = {
    "t": "frame index (0 = the first frame)",
    "z": "centroid, pixels",
    "y": "centroid, pixels",
    "x": "centroid, pixels",
    "track_id": "CTC track label (res_track.txt)",
    "seg_id": "the cell's label in mask###.tif of frame t",
    "area": "pixels (voxels in 3D)",
    "tracklet_id": "tracks joined across missed frames (maximal linear path), first label",
    "lineage_id": "label of the lineage's root track",
}
_EDGE_PROPS = {"probability": "GNN link probability (gnntrack track --edges)"}
_LABEL_LIMIT = 65535


def export_geff(
    res_dir: str | Path,
    out: str | Path,
    *,
    edges_csv: str | Path | None = None,
    overwrite: bool = False,
) -> CellGraph:
    """Write the result `res_dir` as a GEFF zarr folder `out` (atomically); returns its graph."""
    import geff_spec
    from geff.core_io import write_arrays

    graph = result_graph(res_dir)
    nodes, axes = graph.nodes, graph.axes
    tracklet, lineage = chain_ids(graph.tracks)
    labels = nodes["label"].to_numpy(np.int64)
    props = {
        "t": nodes["t"].to_numpy(np.int64),
        **{axis: nodes[axis].to_numpy(np.float64) for axis in axes},
        "track_id": labels,
        "seg_id": labels,
        "area": nodes["area"].to_numpy(np.int64),
        "tracklet_id": np.asarray([tracklet[k] for k in labels], np.int64),
        "lineage_id": np.asarray([lineage[k] for k in labels], np.int64),
    }
    node_props = {k: {"values": v, "missing": None} for k, v in props.items()}
    edge_props = {}
    if edges_csv is not None:
        edge_props["probability"] = _probabilities(graph, read_edges(edges_csv))
    node_ids = np.arange(len(nodes), dtype=np.uint64)
    metadata = geff_spec.GeffMetadata(
        directed=True,
        axes=[geff_spec.Axis(name="t", type="time", unit="frame")]
        + [geff_spec.Axis(name=a, type="space", unit="pixel") for a in axes],
        node_props_metadata=_props_metadata(_NODE_PROPS, node_props),
        edge_props_metadata=_props_metadata(_EDGE_PROPS, edge_props),
        track_node_props={"tracklet": "tracklet_id", "lineage": "lineage_id"},
        display_hints=geff_spec.DisplayHint(
            display_horizontal="x",
            display_vertical="y",
            display_depth="z" if "z" in axes else None,
            display_time="t",
        ),
        extra={
            "gnntrack": {
                "version": __version__,
                "source": str(res_dir),
                "track_prop": "track_id",
                "seg_prop": "seg_id",
            }
        },
    )
    with atomic_output_dir(out, overwrite=overwrite) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tmp.rmdir()  # geff refuses to write into an existing folder
        write_arrays(
            str(tmp),
            node_ids,
            node_props,  # type: ignore[arg-type]
            graph.edges.astype(np.uint64),
            edge_props,  # type: ignore[arg-type]
            metadata,
        )
        validate_geff(tmp)
    return graph


def validate_geff(path: str | Path) -> None:
    """The `geff` package's validation: structure, then graph, tracklets and lineages.

    A violation is a CTCError quoting the package's message.
    """
    from geff.core_io import read_to_memory
    from geff.validate.data import ValidationConfig

    config = ValidationConfig(graph=True, tracklet=True, lineage=True)
    try:
        read_to_memory(str(path), structure_validation=True, data_validation=config)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise CTCError(f"not a valid GEFF ({exc})", path) from exc


def _props_metadata(descriptions: dict[str, str], props: dict) -> dict:
    """Each property's description (the geff package fills in dtypes again when writing)."""
    import geff_spec

    return {
        name: geff_spec.PropMetadata(
            identifier=name,
            dtype=str(props[name]["values"].dtype),
            description=text,
        )
        for name, text in descriptions.items()
        if name in props
    }


def _probabilities(graph: CellGraph, edges: pd.DataFrame) -> dict[str, np.ndarray]:
    """The edge file's probability of each graph edge; missing where it has none."""
    key = {
        (int(a), int(b), int(c), int(d)): float(p)
        for a, b, c, d, p in edges[
            ["t_source", "label_source", "t_target", "label_target", "probability"]
        ].itertuples(index=False)
    }
    t = graph.nodes["t"].to_numpy(np.int64)
    label = graph.nodes["label"].to_numpy(np.int64)
    values = np.zeros(len(graph.edges), np.float64)
    missing = np.ones(len(graph.edges), bool)
    for i, (s, d) in enumerate(graph.edges):
        found = key.get((t[s], label[s], t[d], label[d]))
        if found is not None:
            values[i], missing[i] = found, False
    return {"values": values, "missing": missing}


def import_geff(
    geff_path: str | Path,
    masks_dir: str | Path,
    out_dir: str | Path,
    *,
    seg_prop: str | None = None,
    overwrite: bool = False,
) -> list[Track]:
    """Write the CTC result `out_dir` from a GEFF graph and the label masks it refers to."""
    from geff.core_io import read_to_memory

    geff_path = Path(geff_path)
    try:
        data = read_to_memory(str(geff_path))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise CTCError(f"cannot read GEFF ({exc})", geff_path) from exc
    meta, props = data["metadata"], data["node_props"]
    time_prop = next((a.name for a in meta.axes or [] if a.type == "time"), "t")
    ours = meta.extra.get("gnntrack", {}) if isinstance(meta.extra, dict) else {}
    related = [o.node_prop for o in meta.related_objects or [] if o.type == "labels"]
    seg_prop = seg_prop or ours.get("seg_prop") or next(iter(related), None) or "seg_id"
    for name in (time_prop, seg_prop):
        if name not in props:
            known = ", ".join(sorted(props))
            raise CTCError(f"no node property {name!r} (properties: {known})", geff_path)
    track_prop = ours.get("track_prop", "track_id")
    frames = np.asarray(props[time_prop]["values"]).astype(np.int64)
    seg = np.asarray(props[seg_prop]["values"]).astype(np.int64)
    track_ids = (
        np.asarray(props[track_prop]["values"]).astype(np.int64) if track_prop in props else None
    )
    node_label, tracks = graph_tracks(
        data["node_ids"], data["edge_ids"], frames, track_ids, geff_path
    )
    masks = open_masks(masks_dir)
    by_frame: dict[int, dict[int, int]] = {}
    for t, s, label in zip(frames, seg, node_label, strict=True):
        cells = by_frame.setdefault(int(t), {})
        if int(s) in cells:
            raise CTCError(f"two nodes name cell {s} of frame {t}", geff_path)
        cells[int(s)] = int(label)
    if by_frame and (min(by_frame) < 0 or max(by_frame) >= len(masks)):
        raise CTCError(
            f"nodes in frames {min(by_frame)}..{max(by_frame)}, but {masks.folder} has "
            f"{len(masks)} frames",
            geff_path,
        )

    def relabelled() -> Iterator[np.ndarray]:
        for t, mask in enumerate(progress(masks, len(masks), "write result")):
            cells = by_frame.get(t, {})
            present = set(np.unique(mask).tolist())
            absent = sorted(set(cells) - present)
            if absent:
                raise CTCError(
                    f"frame {t} has no cell {absent[0]} (seg id of a node)", masks.frames[t].path
                )
            lut = np.zeros(int(mask.max(initial=0)) + 1, np.uint16)
            for s, label in cells.items():
                lut[s] = label
            yield lut[mask]

    write_result(out_dir, relabelled(), tracks, n_frames=len(masks), overwrite=overwrite)
    return tracks


def graph_tracks(
    node_ids: np.ndarray,
    edge_ids: np.ndarray,
    frames: np.ndarray,
    track_ids: np.ndarray | None,
    source: str | Path,
) -> tuple[np.ndarray, list[Track]]:
    """CTC tracks of a cell graph: the track label of each node and the track list."""
    index = {int(n): i for i, n in enumerate(np.asarray(node_ids).tolist())}
    n = len(index)
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for a, b in np.asarray(edge_ids).reshape(-1, 2).tolist():
        i, j = index[int(a)], index[int(b)]
        if frames[i] > frames[j]:
            i, j = j, i  # an undirected graph: edges run forward in time
        if frames[i] == frames[j]:
            raise CTCError(f"edge {a} - {b} joins two cells of frame {frames[i]}", source)
        preds[j].append(i)
        succs[i].append(j)
    track_of = np.zeros(n, np.int64)
    begins: list[int] = []
    ends: list[int] = []
    parents: list[int] = []
    ids: list[set[int]] = []
    for j in sorted(range(n), key=lambda k: (frames[k], k)):
        if len(preds[j]) > 1:
            raise CTCError(
                f"node {node_ids[j]} has {len(preds[j])} predecessors: a CTC lineage cannot merge",
                source,
            )
        if preds[j]:
            i = preds[j][0]
            same = track_ids is None or track_ids[i] == track_ids[j]
            if len(succs[i]) == 1 and frames[j] == frames[i] + 1 and same:
                track_of[j] = track_of[i]
                ends[track_of[j] - 1] = int(frames[j])
                if track_ids is not None:
                    ids[track_of[j] - 1].add(int(track_ids[j]))
                continue
        begins.append(int(frames[j]))
        ends.append(int(frames[j]))
        parents.append(int(track_of[preds[j][0]]) if preds[j] else 0)
        ids.append({int(track_ids[j])} if track_ids is not None else set())
        track_of[j] = len(begins)
    labels = np.arange(1, len(begins) + 1)
    kept = [next(iter(s)) for s in ids if len(s) == 1]
    if track_ids is not None and len(kept) == len(begins) and len(set(kept)) == len(kept):
        if all(0 < k <= _LABEL_LIMIT for k in kept):
            labels = np.asarray(kept, np.int64)
    if len(labels) > _LABEL_LIMIT:
        raise CTCError(f"{len(labels)} tracks: more than a uint16 mask can label", source)
    tracks = [
        Track(int(labels[k]), begins[k], ends[k], int(labels[parents[k] - 1]) if parents[k] else 0)
        for k in range(len(begins))
    ]
    return labels[track_of - 1], tracks
