#!/usr/bin/env bash
# The test command: set-up included, then lint and the whole test suite.
#   ./scripts/test.sh            the default run (under 20 minutes on two cores)
#   ./scripts/test.sh --full     also the tests marked `full` (image build, SLURM cluster, ...);
#                                what CI (.ci/run) runs
# Further arguments go to pytest. Real CTC data is used from ../shared/ctc when present;
# those tests skip cleanly elsewhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
full=0
if [[ "${1:-}" == "--full" ]]; then
    full=1
    shift
fi
./scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if ((full)); then
    exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest -m "not full" "$@"
