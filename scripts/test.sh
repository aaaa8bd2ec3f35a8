#!/usr/bin/env bash
# The test command: set-up included, then lint and the whole test suite.
# Real CTC data is used from ../shared/ctc when present; those tests skip cleanly elsewhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
