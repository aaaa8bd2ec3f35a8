"""`gnntrack simulate`: write a realistic simulated CTC dataset (raw frames + TRA/SEG GT)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from inference.cli.options import out_option, overwrite_option
from training.simulator import DEFAULT_PRESET, PRESETS, Preset, get_preset
from training.simulator import simulate as run


def parse_size(text: str, ndim: int) -> tuple[int, ...]:
    """`S` (square), `HxW`, or in 3D also `DxHxW`; sizes in pixels."""
    if not re.fullmatch(r"\d+(x\d+){0,2}", text.strip().lower()):
        raise ValueError(f"{text!r} is not S, HxW or DxHxW (e.g. 256, 512x700, 30x256x256)")
    sizes = tuple(int(s) for s in text.strip().lower().split("x"))
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) == 3 and ndim == 2:
        raise ValueError(f"{text!r} has 3 sizes but the simulation is 2D")
    return sizes


def build_preset(
    preset: str | None,
    dims: int | None,
    frames: int | None,
    size: str | None,
    cells: int | None,
    seg_fraction: float | None = None,
) -> Preset:
    """The preset named (or the default for `dims`) with the explicit options applied."""
    if preset is None:
        base = get_preset(DEFAULT_PRESET[dims or 2])
    else:
        base = get_preset(preset)
        if dims is not None and dims != base.ndim:
            raise ValueError(f"preset {base.name} is {base.ndim}D, but --dims {dims} was given")
    shape = parse_size(size, base.ndim) if size is not None else None
    return base.with_options(frames=frames, size=shape, cells=cells, seg_fraction=seg_fraction)


@click.command("simulate")
@out_option("Dataset folder to write (OUT/01, OUT/01_GT).", path_type=Path)
@click.option(
    "--preset",
    metavar="NAME",
    help="CTC dataset to imitate: "
    + ", ".join(PRESETS)
    + f" (default: {DEFAULT_PRESET[2]} in 2D, {DEFAULT_PRESET[3]} in 3D).",
)
@click.option("--dims", type=click.Choice(["2", "3"]), help="2D (YX) or 3D (ZYX) frames.")
@click.option("--frames", type=click.IntRange(min=1), help="Number of frames.")
@click.option(
    "--size",
    metavar="S|HxW|DxHxW",
    help="Frame size in pixels; the initial cell count scales with the area unless --cells.",
)
@click.option("--cells", type=click.IntRange(min=0), help="Cells in the field at frame 0.")
@click.option(
    "--seg-fraction",
    type=click.FloatRange(0.0, 1.0),
    help="Fraction of frames with SEG ground truth (at least one frame).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@overwrite_option
def simulate(
    out: Path,
    preset: str | None,
    dims: str | None,
    frames: int | None,
    size: str | None,
    cells: int | None,
    seg_fraction: float | None,
    seed: int,
    overwrite: bool,
) -> None:
    """Simulate a CTC dataset at OUT: OUT/01/t000.tif ..., OUT/01_GT/TRA (every cell in every
    frame, full masks, man_track.txt) and OUT/01_GT/SEG (full masks on some frames).

    Textured nuclei move, crowd, divide, die and cross the border; the optics add blur,
    background, photobleaching and Poisson + Gaussian noise. A preset sets every default;
    explicit options override it.
    """
    try:
        settings = build_preset(
            preset, int(dims) if dims else None, frames, size, cells, seg_fraction
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"simulating {settings.summary()} (seed {seed})", err=True)
    summary = run(out, settings, seed, overwrite=overwrite)
    click.echo(str(summary))
