#!/usr/bin/env bash
# Run one dataset's run script inside an image, as the run script would outside:
#   containers/run.sh docker Fluo-N2DH-SIM+-01 [DATA]       image gnntrack:cpu (IMAGE=...)
#   containers/run.sh singularity Fluo-N2DH-SIM+-01 [DATA]  gnntrack.sif (SIF=...)
# reads DATA/Fluo-N2DH-SIM+/01 and writes DATA/Fluo-N2DH-SIM+/01_RES; DATA defaults to the
# bundle's parent folder, so the dataset lies beside the bundle as the CTC has it.
# GPU=1 runs on the GPUs (docker --gpus all, singularity --nv; a --cuda image is needed).
# ENGINE=docker|podman picks the Docker engine (default: the first installed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if (($# < 2)); then
    sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
fi
kind="$1"
name="${2%.sh}"
data="$(cd "${3:-$root/..}" && pwd)"
dataset="${name%-*}"
seq="${name##*-}"
if [[ ! -x "$root/scripts/$name.sh" ]]; then
    echo "run.sh: no run script scripts/$name.sh" >&2
    exit 2
fi
if [[ ! -d "$data/$dataset/$seq" ]]; then
    echo "run.sh: input missing: $data/$dataset/$seq" >&2
    exit 2
fi

case "$kind" in
    docker)
        engine="${ENGINE:-}"
        if [[ -z "$engine" ]]; then
            engine="$(command -v docker >/dev/null && echo docker || echo podman)"
        fi
        gpu=()
        [[ "${GPU:-0}" == 1 ]] && gpu=(--gpus all)
        # the dataset is mounted beside the bundle (/ctc/gnntrack); the result is yours
        exec "$engine" run --rm "${gpu[@]}" --user "$(id -u):$(id -g)" \
            -v "$data/$dataset:/ctc/$dataset" "${IMAGE:-gnntrack:cpu}" "$name"
        ;;
    singularity)
        singularity="$(command -v apptainer || command -v singularity || true)"
        [[ -n "$singularity" ]] || { echo "run.sh: apptainer/singularity not found" >&2; exit 127; }
        nv=()
        [[ "${GPU:-0}" == 1 ]] && nv=(--nv)
        exec "$singularity" run "${nv[@]}" --bind "$data/$dataset" --env "GNNTRACK_DATA=$data" \
            "${SIF:-$root/gnntrack.sif}" "$name"
        ;;
    *)
        echo "run.sh: the first argument is docker or singularity, not $kind" >&2
        exit 2
        ;;
esac
