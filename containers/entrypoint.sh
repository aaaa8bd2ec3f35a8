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

selftest() {
    local tmp sample="$root/data/sample/Sim-N2DH"
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: tmp is local
    trap "rm -rf '$tmp'" EXIT
    gnntrack --version
    # CTC I/O, the validator and the CTC measures: the sample's GT lineage scores 1.0
    gnntrack export-gt "$sample/01_GT" "$tmp/gt_res"
    gnntrack validate "$tmp/gt_res" --images "$sample/01"
    gnntrack evaluate "$tmp/gt_res" "$sample/01_GT" -m TRA,DET,SEG
    # the pipeline through a run script, where the model it needs is complete
    local model="$root/parameters/Fluo-N2DH-SIM+"
    if [[ -f "$model/seg/config.json" && -f "$model/tracker/config.json" ]]; then
        mkdir -p "$tmp/Fluo-N2DH-SIM+/01"
        cp "$sample"/01/t00[0-9].tif "$tmp/Fluo-N2DH-SIM+/01/"  # 10 frames: quick
        GNNTRACK_DATA="$tmp" "$root/scripts/Fluo-N2DH-SIM+-01.sh"
        gnntrack validate "$tmp/Fluo-N2DH-SIM+/01_RES" --images "$tmp/Fluo-N2DH-SIM+/01"
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
