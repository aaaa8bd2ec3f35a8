"""`gnntrack evaluate`: every CTC measure of a result against ground truth."""

from __future__ import annotations

import json

import click

from inference.cli.options import existing_dir
from inference.measures import evaluate as evaluate_result
from inference.measures import normalize_metrics


@click.command()
@click.argument("res_dir", type=existing_dir)
@click.argument("gt_dir", type=existing_dir)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: measure -> value.")
@click.option(
    "--metric",
    "-m",
    "metrics",
    multiple=True,
    metavar="M",
    help="A measure to compute (repeatable or comma-separated), e.g. TRA, SEG, BC(2), BIO; "
    "default: all CTC measures.",
)
@click.option(
    "--details",
    is_flag=True,
    help="Also print the AOGM error counts and division counts behind the measures.",
)
@click.option(
    "--threads",
    "-j",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Frames matched in parallel (0 = all CPUs).",
)
def evaluate(
    res_dir: str,
    gt_dir: str,
    as_json: bool,
    metrics: tuple[str, ...],
    details: bool,
    threads: int,
) -> None:
    """Score RES_DIR (a CTC result) against GT_DIR (holding TRA/ and, if any, SEG/).

    The result is validated first; an invalid one is an error. --json prints everything,
    the AOGM and division counts included. Measures that are undefined
    for this ground truth (BC without divisions, CCA without complete cell cycles, SEG without
    a SEG folder) read n/a (null in JSON).
    """
    results = evaluate_result(res_dir, gt_dir, metrics=list(metrics) or None, threads=threads)
    if as_json:
        click.echo(json.dumps(results))
        return
    measures = set(normalize_metrics(list(metrics) or None))
    shown = {k: v for k, v in results.items() if details or k in measures}
    cells = {name: _format(value) for name, value in shown.items()}
    name_width = max(len(name) for name in cells)
    value_width = max(len(cell) for cell in cells.values())
    for name, cell in cells.items():
        click.echo(f"{name:<{name_width}}  {cell:>{value_width}}")


def _format(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.6f}"
