"""The mutation table (scripts/mutations.py) is kept up to date with the code it breaks.

Running the mutations takes minutes (`./scripts/mutation_check.sh`, in CI's full run); this
checks in the default run that every mutation still applies (its old text occurs exactly
once) and that every test it names exists, so a refactor cannot silently disarm one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from mutation_check import stale_edits  # noqa: E402
from mutations import MUTATIONS  # noqa: E402


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutation_applies_and_names_existing_tests(mutation):
    assert stale_edits(REPO, mutation) == []
    assert all(old != new for old, new in mutation.edits)
    assert mutation.tests
    for test in mutation.tests:
        path, _, name = test.partition("::")
        tree = ast.parse((REPO / path).read_text())
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name.split("[")[0] in defined, test


def test_mutation_names_are_unique():
    names = [m.name for m in MUTATIONS]
    assert len(names) == len(set(names))
