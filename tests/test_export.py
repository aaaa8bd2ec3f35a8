"""Edge files, GEFF export and import, napari tracks: a result leaves and comes back intact."""

from __future__ import annotations

from pathlib import Path

import geff
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from geff.core_io import read_to_memory, write_arrays

from inference.cli import main
from inference.ctc_rules import validate_result
from inference.errors import CTCError
from inference.export import napari_tracks, validate_geff
from inference.export.geff import graph_tracks
from inference.io import Track, frame_name, open_masks, read_tracks, write_mask, write_tracks
from inference.measures import evaluate

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "Sim-N2DH"
PARAMS = ROOT / "parameters" / "Fluo-N2DH-SIM+"
HELA = ROOT.parent / "shared" / "ctc" / "Fluo-N2DL-HeLa-01_RES-example" / "01_RES"


def _invoke(*args: object) -> str:
    run = CliRunner().invoke(main, [str(a) for a in args])
    assert run.exit_code == 0, run.output
    return run.output


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The embedded sample's GT masks linked by the shipped tracker, with its edge file."""
    tmp = tmp_path_factory.mktemp("tracked")
    res, edges = tmp / "01_RES", tmp / "edges.csv"
    _invoke("track", "--images", SAMPLE / "01", "--masks", SAMPLE / "01_GT" / "TRA",
            "--model", PARAMS, "--out", res, "--edges", edges)  # fmt: skip
    return {"res": res, "edges": edges, "tmp": tmp}


def _links(tracks: list[Track]) -> int:
    """Edges of a lineage: a label's consecutive frames, plus one per child."""
    return sum(t.end - t.begin for t in tracks) + sum(1 for t in tracks if t.parent)


def test_edge_file_names_result_cells_and_marks_the_lineage(tracked):
    res, edges = tracked["res"], pd.read_csv(tracked["edges"])
    assert sorted(p.name for p in res.iterdir() if not p.name.startswith("mask")) == [
        "res_track.txt"
    ]  # the result folder holds only what the CTC allows
    assert list(edges.columns) == [
        "t_source", "label_source", "t_target", "label_target", "probability", "linked"
    ]  # fmt: skip
    assert edges["probability"].between(0, 1).all()
    tracks = read_tracks(res / "res_track.txt")
    linked = edges[edges["linked"] == 1]
    assert len(linked) == _links(tracks)  # every link of the lineage was a scored candidate
    assert linked["probability"].median() > 0.9
    masks = open_masks(res)
    for row in linked.head(20).itertuples():
        assert row.label_source in masks.read(row.t_source)
        assert row.label_target in masks.read(row.t_target)


def test_edge_file_never_goes_into_the_result(tmp_path):
    args = ["track", "--images", SAMPLE / "01", "--masks", SAMPLE / "01_GT" / "TRA"]
    args += ["--model", PARAMS]
    args += ["--out", tmp_path / "RES", "--edges", tmp_path / "RES" / "edges.csv"]
    run = CliRunner().invoke(main, [str(a) for a in args])
    assert run.exit_code == 2 and "inside the result folder" in run.output
    assert not (tmp_path / "RES").exists()


def test_geff_round_trip_validates_and_scores_identically(tracked, tmp_path):
    res, out = tracked["res"], tmp_path / "graph.zarr"
    said = _invoke("export", res, "--to", "geff", "--out", out, "--edges", tracked["edges"])
    tracks = read_tracks(res / "res_track.txt")
    n_nodes = sum(t.end - t.begin + 1 for t in tracks)
    assert f"{n_nodes} nodes, {_links(tracks)} edges" in said
    # the geff package's own checks: structure, and graph / tracklet / lineage rules
    geff.validate_structure(str(out))
    validate_geff(out)
    graph, meta = geff.read(str(out))
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (n_nodes, _links(tracks))
    node = graph.nodes[0]
    assert {"t", "y", "x", "track_id", "seg_id", "area"} <= set(node)
    assert [a.name for a in meta.axes] == ["t", "y", "x"]
    probabilities = [d["probability"] for _, _, d in graph.edges(data=True)]
    assert all(0 <= p <= 1 for p in probabilities)

    back = tmp_path / "BACK_RES"
    _invoke("import-geff", out, "--masks", res, "--out", back)
    assert validate_result(back, images_dir=SAMPLE / "01") == []
    assert read_tracks(back / "res_track.txt") == tracks
    for a, b in zip(open_masks(res), open_masks(back), strict=True):
        np.testing.assert_array_equal(a, b)
    before = evaluate(res, SAMPLE / "01_GT")
    assert evaluate(back, SAMPLE / "01_GT") == before
    assert before["TRA"] < 1  # an imperfect result: the scores say something


def test_import_reads_tracks_off_the_graph_without_track_ids(tracked, tmp_path):
    """A GEFF from another tool: only t, seg_id and positions; tracks come from the edges."""
    res = tracked["res"]
    _invoke("export", res, "--to", "geff", "--out", tmp_path / "ours.zarr")
    data = read_to_memory(str(tmp_path / "ours.zarr"))
    props = {k: data["node_props"][k] for k in ("t", "y", "x")}
    props["cell"] = data["node_props"]["seg_id"]
    meta = data["metadata"].model_copy(
        update={"track_node_props": None, "extra": {}, "node_props_metadata": {}}
    )
    write_arrays(str(tmp_path / "other.zarr"), data["node_ids"], props, data["edge_ids"], {}, meta)
    back = tmp_path / "BACK_RES"
    _invoke("import-geff", tmp_path / "other.zarr", "--masks", res, "--out", back,
            "--seg-prop", "cell")  # fmt: skip
    assert validate_result(back) == []
    tracks = read_tracks(back / "res_track.txt")
    assert [t.label for t in tracks] == list(range(1, len(tracks) + 1))
    assert len(tracks) == len(read_tracks(res / "res_track.txt"))
    metrics = ["TRA", "DET", "LNK", "BC(0)", "CT"]
    assert evaluate(back, SAMPLE / "01_GT", metrics) == evaluate(res, SAMPLE / "01_GT", metrics)


def test_graph_tracks_handle_gaps_divisions_and_refuse_merges():
    frames = np.array([0, 1, 3, 2, 2])
    # 0 -> 1 (same cell), 1 -> 2 across a missed frame, 1 -> 3 and 1 -> 4... a division of 1
    labels, tracks = graph_tracks(
        np.arange(5), np.array([[0, 1], [1, 3], [1, 4], [3, 2]]), frames, None, "g"
    )
    assert tracks == [Track(1, 0, 1), Track(2, 2, 3, 1), Track(3, 2, 2, 1)]
    assert labels.tolist() == [1, 1, 2, 2, 3]
    # edges given backwards in time are read forwards (an undirected graph)
    _, backwards = graph_tracks(np.arange(2), np.array([[1, 0]]), np.array([0, 1]), None, "g")
    assert backwards == [Track(1, 0, 1)]
    with pytest.raises(CTCError, match="cannot merge"):
        graph_tracks(np.arange(3), np.array([[0, 2], [1, 2]]), np.array([0, 0, 1]), None, "g")


def test_napari_table_has_points_and_parents(tracked, tmp_path):
    out = tmp_path / "tracks.csv"
    _invoke("export", tracked["res"], "--to", "napari", "--out", out)
    table = pd.read_csv(out)
    assert list(table.columns) == ["track_id", "t", "y", "x", "parent_track_id"]
    tracks = read_tracks(tracked["res"] / "res_track.txt")
    assert len(table) == sum(t.end - t.begin + 1 for t in tracks)
    parents = table.groupby("track_id")["parent_track_id"].first().to_dict()
    assert parents == {t.label: t.parent for t in tracks}
    args = ["export", str(tracked["res"]), "--to", "napari", "--out", str(out)]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_3d_result_exports_with_z(tmp_path):
    res = tmp_path / "RES"
    res.mkdir()
    for t in range(3):
        frame = np.zeros((4, 16, 16), np.uint16)
        frame[1:3, 2:6, 2 + t : 6 + t] = 1
        if t == 2:
            frame[1:3, 10:14, 10:14] = 2
        write_mask(res / frame_name("mask", t, 3), frame)
    write_tracks(res / "res_track.txt", [Track(1, 0, 2), Track(2, 2, 2)])
    table = napari_tracks(res)
    assert list(table.columns) == ["track_id", "t", "z", "y", "x", "parent_track_id"]
    assert table["z"].tolist() == [1.5, 1.5, 1.5, 1.5]
    _invoke("export", res, "--to", "geff", "--out", tmp_path / "g.zarr")
    _, meta = geff.read(str(tmp_path / "g.zarr"))
    assert [a.name for a in meta.axes] == ["t", "z", "y", "x"]
    _invoke("import-geff", tmp_path / "g.zarr", "--masks", res, "--out", tmp_path / "BACK")
    assert read_tracks(tmp_path / "BACK" / "res_track.txt") == read_tracks(res / "res_track.txt")


@pytest.mark.realdata
def test_geff_round_trip_of_a_large_real_result(tmp_path):
    if not HELA.is_dir():
        pytest.skip(f"{HELA} not found")
    _invoke("export", HELA, "--to", "geff", "--out", tmp_path / "hela.zarr")
    validate_geff(tmp_path / "hela.zarr")
    _invoke("import-geff", tmp_path / "hela.zarr", "--masks", HELA, "--out", tmp_path / "BACK")
    assert read_tracks(tmp_path / "BACK" / "res_track.txt") == read_tracks(HELA / "res_track.txt")
    assert validate_result(tmp_path / "BACK") == []
