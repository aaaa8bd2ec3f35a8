#!/usr/bin/env bash
# Build the images of the bundle, from its folder:
#   containers/build.sh docker [--cuda] [ENGINE ARGS...]       image gnntrack:cpu (gnntrack:cuda)
#   containers/build.sh singularity [--cuda] [ENGINE ARGS...]  the Docker image, then gnntrack.sif
#                                                               (gnntrack-cuda.sif) from Singularity.def
# ENGINE ARGS go to the image build, e.g. --build-arg BASE=python:3.11-slim-bookworm.
# Environment: ENGINE=docker|podman|buildah (default: the first installed), TAG (image name),
# BASE and TORCH_INDEX (the Dockerfile's build arguments; see its header).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

target="${1:-}"
shift || true
variant=cpu
if [[ "${1:-}" == "--cuda" ]]; then
    variant=cuda
    shift
fi
case "$target" in
    docker | singularity) ;;
    *)
        sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
        exit 2
        ;;
esac

engine="${ENGINE:-}"
if [[ -z "$engine" ]]; then
    for candidate in docker podman buildah; do
        if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then
            engine="$candidate"
            break
        fi
    done
fi
[[ -n "$engine" ]] || { echo "build.sh: no docker, podman or buildah found" >&2; exit 127; }
tag="${TAG:-gnntrack:$variant}"

args=()
[[ -n "${BASE:-}" ]] && args+=(--build-arg "BASE=$BASE")
if [[ "$variant" == cuda ]]; then
    # the CUDA twin of the Dockerfile's default (CPU) torch index: .../whl/cpu -> .../whl/cu126
    cpu_index="$(sed -n 's/^ARG TORCH_INDEX=//p' Dockerfile)"
    args+=(--build-arg "TORCH_INDEX=${TORCH_INDEX:-${cpu_index%/cpu}/cu126}")
elif [[ -n "${TORCH_INDEX+set}" ]]; then
    args+=(--build-arg "TORCH_INDEX=$TORCH_INDEX")
fi

echo "[build] $engine: image $tag ($variant)" >&2
case "$engine" in
    docker) docker build "${args[@]}" "$@" -t "$tag" . ;;
    podman) podman build --isolation chroot "${args[@]}" "$@" -t "$tag" . ;;
    buildah) buildah bud --isolation chroot "${args[@]}" "$@" -t "$tag" . ;;
    *) echo "build.sh: unknown ENGINE $engine" >&2 && exit 2 ;;
esac

if [[ "$target" == singularity ]]; then
    singularity="$(command -v apptainer || command -v singularity || true)"
    [[ -n "$singularity" ]] || { echo "build.sh: apptainer/singularity not found" >&2; exit 127; }
    mkdir -p build
    rm -f build/gnntrack-image.tar
    echo "[build] $tag -> build/gnntrack-image.tar (docker-archive)" >&2
    case "$engine" in
        docker) docker save -o build/gnntrack-image.tar "$tag" ;;
        podman) podman save --format docker-archive -o build/gnntrack-image.tar "$tag" ;;
        buildah) buildah push "$tag" "docker-archive:build/gnntrack-image.tar:$tag" ;;
    esac
    sif=gnntrack.sif
    [[ "$variant" == cuda ]] && sif=gnntrack-cuda.sif
    echo "[build] Singularity.def -> $sif" >&2
    "$singularity" build --force "$sif" Singularity.def
    rm -f build/gnntrack-image.tar
fi
