#!/usr/bin/env bash
# The test command: set-up included, then lint and the whole test suite.
#   ./scripts/test.sh            the default run (under 20 minutes on two cores)
#   ./scripts/test.sh --full     also the tests marked `full` (image build, SLURM cluster, ...)
#                                and the mutation check; what CI (.ci/run) runs
# Further arguments go to pytest. Before the tests, scripts/setup_test_tools.sh installs what
# they need beyond .venv (Chromium, Snakemake, with --full the image and SLURM tools; see
# there), so that every test runs: only tests on real CTC data skip, where ../shared/ctc is
# absent. The end of the output says how many tests ran and which skipped, and why.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
full=0
if [[ "${1:-}" == "--full" ]]; then
    full=1
    shift
fi
./scripts/setup.sh --dev
if ((full)); then
    ./scripts/setup_test_tools.sh --full
else
    ./scripts/setup_test_tools.sh
fi
if [[ -z "${GNNTRACK_SNAKEMAKE:-}" && -x .venv-snakemake/bin/snakemake ]]; then
    export GNNTRACK_SNAKEMAKE="$root/.venv-snakemake/bin/snakemake"
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .

markers=(-m "not full")
((full)) && markers=()
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
.venv/bin/python -m pytest -ra "${markers[@]}" "$@" 2>&1 | tee "$log"
status="${PIPESTATUS[0]}"
set -e
# The full run also proves that the suite can fail: each broken version of scripts/mutations.py
# must turn the default run red (scripts/mutation_check.sh; a few minutes).
if ((full)) && ((status == 0)); then
    ./scripts/mutation_check.sh || status=$?
fi
# One line with the counts, then every skipped test with its reason (the SKIPPED lines of pytest -ra).
counts="$(grep -E '^=+ .*[0-9]+ (passed|failed|error|errors|skipped|deselected).* in [0-9.]+s' "$log" | tail -1 | tr -d '=' | xargs)"
echo "[test] ran: ${counts:-no summary (see above)}" >&2
skipped="$(grep -cE '^SKIPPED' "$log" || true)"
if ((skipped)); then
    echo "[test] skipped, with the reasons (only tests on data absent here may skip):" >&2
    grep -E '^SKIPPED' "$log" | sed 's/^/[test]   /' >&2
fi
exit "$status"
