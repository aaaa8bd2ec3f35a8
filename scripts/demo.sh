#!/usr/bin/env bash
# The main job on the embedded sample, set-up included: segments and tracks
# data/sample/Sim-N2DH/01 into a CTC result folder, checks it with the validator and
# prints its CTC scores.
# Output: out/demo/Sim-N2DH/01_RES (replaced on every run of the demo).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh
gnntrack=.venv/bin/gnntrack
sample=data/sample/Sim-N2DH
res=out/demo/Sim-N2DH/01_RES

# Segmentation + GNN tracking with the models trained on Fluo-N2DH-SIM+ (the sample
# imitates that dataset), then the CTC format check and the CTC measures.
"$gnntrack" run "$sample" 01 --model parameters/Fluo-N2DH-SIM+ --out "$res" --overwrite
"$gnntrack" validate "$res" --images "$sample/01"
"$gnntrack" evaluate "$res" "$sample/01_GT"
