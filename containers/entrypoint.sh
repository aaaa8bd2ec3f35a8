#!/usr/bin/env bash
# The entry point of the Docker and Singularity images (the bundle sits at /ctc/gnntrack):
#   IMAGE Fluo-N2DH-SIM+-01            scripts/Fluo-N2DH-SIM+-01.sh: /ctc/Fluo-N2DH-SIM+/01 in,
#                                      /ctc/Fluo-N2DH-SIM+/01_RES out (GNNTRACK_DATA=DIR: DIR/...)
#   IMAGE evaluate Fluo-N2DH-SIM+ 01   scripts/evaluate.sh: 01_RES scored against 01_GT
#   IMAGE gnntrack ARGS...             any gnntrack command (gnntrack --help lists them)
#   IMAGE selftest                     checks the install on the embedded sample
#   IMAGE help                         this text and the datasets it has run scripts for
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
    sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    echo "Run scripts (<Dataset>-<Seq>):"
    find "$root/scripts" -name '*-0[0-9].sh' -printf '%f\n' | sed 's/\.sh$//' | sort | paste -sd' ' \
        | fold -s -w 92 | sed 's/^/  /; s/ *$//'
}

# at_least JSON MEASURE=MIN ...: each measure of the JSON scores must reach its minimum
at_least() {
    python3 -c '
import json, sys
scores = json.loads(sys.argv[1])
low = []
for want in sys.argv[2:]:
    name, least = want.split("=")
    value = scores.get(name)
    ok = value is not None and value >= float(least)
    low += [] if ok else [name]
    print("selftest:", name, value, "at least", least, "ok" if ok else "TOO LOW")
sys.exit("selftest: failed, too low: " + ", ".join(low) if low else 0)
' "$@"
}

selftest() {
    local tmp scores sample="$root/data/sample/Sim-N2DH"
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: tmp is local
    trap "rm -rf '$tmp'" EXIT
    gnntrack --version
    # CTC I/O, the validator and the CTC measures: the sample's GT lineage scores 1.0
    gnntrack export-gt "$sample/01_GT" --out "$tmp/gt_res"
    gnntrack validate "$tmp/gt_res" --images "$sample/01"
    scores="$(gnntrack evaluate "$tmp/gt_res" "$sample/01_GT" -m TRA,DET,SEG --json)"
    at_least "$scores" TRA=1 DET=1 SEG=1
    # the pipeline through a run script, where the model it needs is complete, scored
    # through evaluate.sh against the sample's GT cut to the same 10 frames (one division)
    local model="$root/parameters/Fluo-N2DH-SIM+" data="$tmp/Fluo-N2DH-SIM+"
    if [[ -f "$model/seg/config.json" && -f "$model/tracker/config.json" ]]; then
        mkdir -p "$data/01" "$data/01_GT/TRA" "$data/01_GT/SEG"
        cp "$sample"/01/t00[0-9].tif "$data/01/"  # 10 frames: quick
        cp "$sample"/01_GT/TRA/man_track00[0-9].tif "$data/01_GT/TRA/"
        cp "$sample"/01_GT/SEG/man_seg00[0-9].tif "$data/01_GT/SEG/"
        awk '$2 <= 9 { if ($3 > 9) $3 = 9; print }' "$sample/01_GT/TRA/man_track.txt" \
            >"$data/01_GT/TRA/man_track.txt"
        GNNTRACK_DATA="$tmp" "$root/scripts/Fluo-N2DH-SIM+-01.sh"
        gnntrack validate "$data/01_RES" --images "$data/01"
        scores="$(GNNTRACK_DATA="$tmp" "$root/scripts/evaluate.sh" Fluo-N2DH-SIM+ 01 --json \
            -m TRA,DET,SEG,LNK,BC\(0\))"
        # measured: TRA 0.945, DET 0.956, SEG 0.842, LNK 0.864, the one division found
        at_least "$scores" TRA=0.9 DET=0.9 SEG=0.75 LNK=0.8 "tp_div(0)=1"
    else
        echo "selftest: parameters/Fluo-N2DH-SIM+ is incomplete; run script not exercised"
    fi
    echo "selftest: passed"
}

# Numba's kernels were compiled into /opt/numba-cache when the image was built. A Singularity
# image is read-only, so its cache lives in /tmp: start that one from the built kernels.
if [[ -d /opt/numba-cache && -n "${NUMBA_CACHE_DIR:-}" && ! -e "$NUMBA_CACHE_DIR" ]]; then
    cp -r /opt/numba-cache "$NUMBA_CACHE_DIR" 2>/dev/null || true
fi

command="${1:-help}"
case "$command" in
    help | -h | --help | list) usage ;;
    selftest) selftest ;;
    evaluate) shift && exec "$root/scripts/evaluate.sh" "$@" ;;
    gnntrack) shift && exec gnntrack "$@" ;;
    *)
        script="$root/scripts/${command%.sh}.sh"
        if [[ "$command" != */* && -x "$script" && "$command" == *-0[0-9]* ]]; then
            shift
            exec "$script" "$@"
        fi
        echo "entrypoint: unknown command or dataset: $command" >&2
        usage >&2
        exit 2
        ;;
esac
