#!/usr/bin/env bash
# Score a run script's result with the CTC measures, laid out as the challenge does:
#   ./scripts/evaluate.sh Fluo-N2DH-SIM+ 01 [gnntrack evaluate options, e.g. --json]
# scores ../Fluo-N2DH-SIM+/01_RES against ../Fluo-N2DH-SIM+/01_GT (TRA/, and SEG/ where
# present) with `gnntrack evaluate`, which validates the result first. GNNTRACK_DATA=DIR
# reads DIR/<Dataset> instead of ../<Dataset>, as the run scripts do.
set -euo pipefail
me="$(basename "$0")"
if (($# < 2)); then
    echo "usage: $me DATASET SEQ [gnntrack evaluate options]   (e.g. $me Fluo-N2DH-SIM+ 01)" >&2
    exit 2
fi
dataset="$1"
seq="$2"
shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${GNNTRACK_DATA:-$root/..}"
res="$data/$dataset/${seq}_RES"
gt="$data/$dataset/${seq}_GT"

for dir in "$res" "$gt/TRA"; do
    if [[ ! -d "$dir" ]]; then
        echo "$me: not found: $dir (run ./scripts/$dataset-$seq.sh first; GT from the CTC)" >&2
        exit 2
    fi
done

if [[ -x "$root/.venv/bin/gnntrack" ]]; then
    gnntrack="$root/.venv/bin/gnntrack"
elif command -v gnntrack >/dev/null; then
    gnntrack="$(command -v gnntrack)"
else
    echo "$me: gnntrack not found: run ./scripts/setup.sh first, or use the container" >&2
    exit 127
fi

exec "$gnntrack" evaluate "$res" "$gt" "$@"
