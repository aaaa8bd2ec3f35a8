#!/usr/bin/env bash
# The main job on the embedded sample, set-up included: writes a CTC result folder for
# data/sample/Sim-N2DH/01, checks it with the validator and prints its CTC scores.
# Output: out/demo/Sim-N2DH/01_RES (replaced on every run of the demo).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh
gnntrack=.venv/bin/gnntrack
sample=data/sample/Sim-N2DH
res=out/demo/Sim-N2DH/01_RES

# Stage 1 (current bundle): the ground-truth lineage of the sample written as a result,
# the reference that every CTC measure must score 1.0. The segmentation + GNN tracking
# pipeline (`gnntrack run`) takes this stage's place as it lands; the rest stays.
"$gnntrack" export-gt "$sample/01_GT" "$res" --overwrite
"$gnntrack" validate "$res" --images "$sample/01"
"$gnntrack" evaluate "$res" "$sample/01_GT"
