#!/usr/bin/env bash
# Compile gnntrack's numba kernels (cell features, crops) into $NUMBA_CACHE_DIR, once, when
# the image is built: every run of the image then loads them instead of compiling them
# again (~5 s a run). Tracks and runs (segment + track) the embedded 2D sample and a tiny
# simulated 3D stack, then opens the cache to every user (runs use --user "$(id -u):$(id -g)").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${NUMBA_CACHE_DIR:?set NUMBA_CACHE_DIR to the cache folder to fill}"
tmp="$(mktemp -d)"
# shellcheck disable=SC2064  # expand now
trap "rm -rf '$tmp'" EXIT
sample="$root/data/sample/Sim-N2DH"
gnntrack track --images "$sample/01" --masks "$sample/01_GT/TRA" \
    --model "$root/parameters/Fluo-N2DH-SIM+" --out "$tmp/res2d"
# a whole run as the run scripts do it: the segmenter's label masks and the repairs of their
# errors reach kernels (other types) that linking GT masks never does
gnntrack run "$sample" 01 --model "$root/parameters/Fluo-N2DH-SIM+" --out "$tmp/run2d"
gnntrack simulate --out "$tmp/sim3d" --dims 3 --size 12x96x96 --frames 3 --cells 3 --seed 0
gnntrack track --images "$tmp/sim3d/01" --masks "$tmp/sim3d/01_GT/TRA" \
    --model "$root/parameters/Fluo-N3DH-CE-sim" --out "$tmp/res3d"
gnntrack run "$tmp/sim3d" 01 --model "$root/parameters/Fluo-N3DH-CE-sim" --out "$tmp/run3d"
find "$NUMBA_CACHE_DIR" -name '*.nbi' | grep -q . || { echo "no numba cache written" >&2; exit 1; }
chmod -R a+rwX "$NUMBA_CACHE_DIR"
chmod 1777 "$NUMBA_CACHE_DIR"
