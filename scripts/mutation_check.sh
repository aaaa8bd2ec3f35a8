#!/usr/bin/env bash
# Mutation check: each broken version of gnntrack listed in scripts/mutations.py must make the
# default test run fail. Prints a table (mutation, caught, the test that caught it) and exits
# non-zero if any mutation survives. Needs ./scripts/setup.sh --dev first.
#   ./scripts/mutation_check.sh                    every mutation (about 6 minutes on 2 cores)
#   ./scripts/mutation_check.sh --only NAME        one of them (repeatable); --list lists them
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -x "$root/.venv/bin/python" ]]; then
    echo "mutation_check.sh: no .venv: run ./scripts/setup.sh --dev first" >&2
    exit 2
fi
exec "$root/.venv/bin/python" "$root/scripts/mutation_check.py" "$@"
