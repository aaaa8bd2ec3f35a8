#!/usr/bin/env bash
# Create (or refresh) the bundle's virtual environment in .venv with the pinned versions.
#   ./scripts/setup.sh          inference + training (the `train` extra)
#   ./scripts/setup.sh --dev    also the test and lint tools (`dev`)
# An inference-only install (what the image holds) is `pip install .` without extras.
# Re-running is cheap: nothing is installed when .venv already matches pyproject + constraints.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
extras="[train]"
[[ "${1:-}" == "--dev" ]] && extras="[train,dev]"

"$python" - <<'PY' || { echo "gnntrack needs Python >= 3.11 (found $("$python" --version 2>&1)); set PYTHON=..." >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [[ ! -x .venv/bin/python ]]; then
    echo "[setup] creating .venv"
    "$python" -m venv .venv
fi
stamp=".venv/.gnntrack-installed${extras}"
digest="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
    exit 0
fi
echo "[setup] installing pinned dependencies into .venv (first run takes a few minutes)"
# torch is pinned to a CPU build; a GPU machine can install the CUDA build of the same
# version afterwards (see README).
.venv/bin/python -m pip install -qq --disable-pip-version-check \
    -c constraints.txt -e ".${extras}"
echo "$digest" > "$stamp"
echo "[setup] done: $(.venv/bin/gnntrack --version)"
