"""`gnntrack export` (GEFF, napari) and `gnntrack import-geff`: a result in other tools."""

from __future__ import annotations

import click

from inference.cli.options import (
    existing_dir,
    masks_option,
    out_option,
    overwrite_option,
    result_out_option,
)


@click.command()
@click.argument("res_dir", type=existing_dir)
@click.option(
    "--to",
    "fmt",
    required=True,
    type=click.Choice(["geff", "napari"]),
    help="geff: a GEFF zarr folder; napari: a tracks CSV.",
)
@out_option(
    "What to write: with --to geff a zarr folder (e.g. tracks.zarr), with --to napari a "
    "CSV file (e.g. tracks.csv).",
    file_okay=True,
)
@click.option(
    "--edges",
    "edges_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Edge file of `gnntrack track/run --edges`: adds each GEFF edge's probability.",
)
@overwrite_option
def export(res_dir: str, out: str, fmt: str, edges_csv: str | None, overwrite: bool) -> None:
    """Write a result as a GEFF graph or a napari tracks table.

    RES_DIR (mask000.tif ... + res_track.txt) is written to OUT. geff: the tracking graph in the
    Graph Exchange File Format: a node per cell and frame (t, y, x or z, y, x, track_id, seg_id
    = mask label, area, tracklet_id, lineage_id), an edge per link in time (with the GNN's
    probability given --edges); checked with the geff package's own validation. napari: columns
    track_id, t, (z,) y, x and parent_track_id, for napari's Tracks layer.
    """
    if fmt == "geff":
        from inference.export.geff import export_geff

        graph = export_geff(res_dir, out, edges_csv=edges_csv, overwrite=overwrite)
        click.echo(
            f"wrote {out}: GEFF with {len(graph.nodes)} nodes, {len(graph.edges)} edges "
            f"({len(graph.tracks)} tracks), valid"
        )
        return
    if edges_csv is not None:
        raise click.UsageError("--edges goes with --to geff only")
    from inference.export.napari import export_napari

    table = export_napari(res_dir, out, overwrite=overwrite)
    click.echo(f"wrote {out}: {len(table)} points of {table['track_id'].nunique()} tracks")


@click.command("import-geff")
@click.argument("geff_path", type=click.Path(exists=True, path_type=str))
@masks_option(
    "The label masks the graph's seg ids refer to (mask000.tif ..., e.g. the exported result)."
)
@result_out_option
@click.option(
    "--seg-prop",
    help="Node property holding each cell's mask label [default: from the GEFF, else seg_id].",
)
@overwrite_option
def import_geff(
    geff_path: str, masks_dir: str, out: str, seg_prop: str | None, overwrite: bool
) -> None:
    """Turn a GEFF graph plus its label masks into a CTC result folder.

    GEFF_PATH is the graph (a zarr folder). Each node names a cell by its frame and its label in
    MASKS; cells of MASKS that are no node are dropped. Tracks and divisions are read off the
    graph's edges; the result validates with `gnntrack validate`.
    """
    from inference.export.geff import import_geff as run_import

    tracks = run_import(geff_path, masks_dir, out, seg_prop=seg_prop, overwrite=overwrite)
    click.echo(f"wrote {out}: {len(tracks)} tracks")
