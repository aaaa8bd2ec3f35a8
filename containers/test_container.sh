#!/usr/bin/env bash
# The container test: really builds the Docker image on this machine and runs a run script
# inside it on the embedded sample, then validates the result outside.
#   containers/test_container.sh       (as root; needs buildah, podman and debootstrap:
#                                       apt-get install -y buildah podman debootstrap)
# No registry is assumed reachable: the base image is a Debian bookworm (Python 3.11) made
# here with debootstrap from this machine's own apt mirror (containers/debian_mirror.sh, or
# DEBIAN_MIRROR) and imported as localhost/bookworm-minbase, unless BASE names an image
# that is already there. pip inside the build uses this machine's pip
# settings (package mirror, its CA bundle, local wheels), mounted into the build read-only.
# Run by pytest in the full run, ./scripts/test.sh --full (tests/test_containers.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
base="${BASE:-localhost/bookworm-minbase}"
tag="${TAG:-localhost/gnntrack:test}"
dataset=Fluo-N2DH-SIM+
sample="$root/data/sample/Sim-N2DH"
gnntrack="$root/.venv/bin/gnntrack"
[[ -x "$gnntrack" ]] || gnntrack=gnntrack
say() { echo "[container-test $(date -u +%H:%M:%S)] $*" >&2; }

for tool in buildah podman; do
    command -v "$tool" >/dev/null || { say "$tool not installed"; exit 127; }
done

# 1. the base image (once)
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || { say "debootstrap not installed"; exit 127; }
    mirror="$("$root/containers/debian_mirror.sh")"  # this machine's apt mirror, or DEBIAN_MIRROR
    rootfs="$(mktemp -d /tmp/gnntrack-rootfs.XXXXXX)"
    say "debootstrap bookworm (minbase + python3-venv) from $mirror -> $base"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >/dev/null
    tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
    rm -rf "$rootfs"
fi

# 2. the image, with this machine's pip settings (file:// indexes and wheel folders mounted)
pip_config() { python3 -m pip config get "global.$1" 2>/dev/null || true; }
find_links="${PIP_FIND_LINKS:-$(pip_config find-links)}"
extra_index="${PIP_EXTRA_INDEX_URL:-$(pip_config extra-index-url)}"
cert="${PIP_CERT:-$(pip_config cert)}"
[[ -n "$cert" ]] || cert=/etc/ssl/certs/ca-certificates.crt
build=(--isolation chroot --layers --build-arg "BASE=$base" --build-arg "TORCH_INDEX=")
for location in $find_links $extra_index; do
    dir="${location#file://}"
    dir="${dir%/simple}"
    [[ -d "$dir" ]] && build+=(-v "$dir:$dir:ro")
done
[[ -n "$find_links" ]] && build+=(--build-arg "PIP_FIND_LINKS=$find_links")
[[ -n "$extra_index" ]] && build+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra_index")
if [[ -n "$cert" && -f "$cert" ]]; then
    build+=(-v "$cert:/etc/pip-host-ca.crt:ro" --build-arg "PIP_CERT=/etc/pip-host-ca.crt")
fi
say "buildah bud -> $tag"
buildah bud "${build[@]}" -t "$tag" .

entrypoint="$(buildah inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$tag")"
user="$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")"
say "entry point $entrypoint, user $user"
[[ "$entrypoint" == "[/ctc/gnntrack/containers/entrypoint.sh]" && "$user" == 1000:1000 ]]

# 3. a run script inside it, the dataset mounted beside the bundle
work="$(mktemp -d /tmp/gnntrack-ctest.XXXXXX)"
ctr="$(buildah from "$tag")"
# shellcheck disable=SC2064  # expand now
trap "buildah rm '$ctr' >/dev/null; rm -rf '$work'" EXIT
mkdir -p "$work/$dataset"
cp -r "$sample/01" "$sample/01_GT" "$work/$dataset/"
chmod -R a+rwX "$work"
in_image() {
    buildah run --isolation chroot -v "$work/$dataset:/ctc/$dataset" "$ctr" -- \
        /ctc/gnntrack/containers/entrypoint.sh "$@"
}
compiled() {  # numba kernels in the image's cache (one .nbc per compiled signature)
    buildah run --isolation chroot "$ctr" -- find /opt/numba-cache -name '*.nbc' | wc -l
}
kernels="$(compiled)"
say "numba kernels compiled at build: $kernels"
[[ "$kernels" -gt 0 ]]
say "selftest"
in_image selftest
say "run script $dataset-01"
status=0
in_image "$dataset-01" || status=$?
left="$(find "$work/$dataset" -mindepth 1 -maxdepth 1 -printf '%f ' | xargs -n1 | sort | xargs)"
case "$status" in
    0)
        [[ "$left" == "01 01_GT 01_RES" ]] || { say "left in the dataset folder: $left"; exit 1; }
        "$gnntrack" validate "$work/$dataset/01_RES" --images "$work/$dataset/01"
        [[ "$(compiled)" == "$kernels" ]] || { say "the run compiled numba kernels again"; exit 1; }
        say "scores of the result (evaluate.sh in the image)"
        in_image evaluate "$dataset" 01 -m TRA,DET,SEG
        say "passed: the run script's result in the image validates"
        ;;
    3)
        [[ "$left" == "01 01_GT" ]] || { say "left in the dataset folder: $left"; exit 1; }
        say "passed: image built and runs; parameters/$dataset is incomplete, so the run" \
            "script refused (exit 3) instead of tracking"
        ;;
    *)
        say "the run script failed in the image (exit $status)"
        exit 1
        ;;
esac
