"""The layers keep their rules (docs/architecture.md): an import that breaks one fails here.

Every import statement of a layer's files is read (module level and inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: (files, forbidden module prefixes, allowed exceptions, the rule in words)
RULES = [
    ("inference", ("training",), (), "inference never imports training"),
    (
        "seg_code",
        ("training", "inference", "tifffile", "imagecodecs"),
        ("inference.config",),  # the strict-config helpers: values in, no files, no tracking
        "seg_code works on arrays: it reads no files and knows nothing of tracking",
    ),
    ("inference/tracking/solve.py", ("torch",), (), "the solver takes edge scores, not networks"),
    ("inference/io", ("torch",), (), "reading and writing CTC files needs no torch"),
    (
        "inference/cli",
        (
            "inference.tracking",
            "inference.segmentation",
            "inference.cells",
            "inference.models",
            "torch",
        ),
        (),
        "the CLI parses options and calls inference.pipeline; it assembles no stages itself",
    ),
]


def imported_modules(source: str) -> set[str]:
    """Every module an import statement in `source` names (relative imports excluded)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def breaches(source: str, forbidden: tuple[str, ...], allowed: tuple[str, ...]) -> list[str]:
    def under(name: str, prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return sorted(
        m for m in imported_modules(source) if under(m, forbidden) and not under(m, allowed)
    )


@pytest.mark.parametrize(
    ("where", "forbidden", "allowed", "rule"), RULES, ids=[r[3] for r in RULES]
)
def test_layer_keeps_its_rule(where, forbidden, allowed, rule):
    path = REPO / where
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    assert files, where
    found = {
        str(f.relative_to(REPO)): hits
        for f in files
        if (hits := breaches(f.read_text(), forbidden, allowed))
    }
    assert found == {}, f"{rule}: {found}"


def test_the_scanner_sees_imports_at_any_depth():
    source = (
        "import numpy as np\n"
        "def f():\n"
        "    from training.simulator import simulate\n"
        "    import torch.nn\n"
        "from inference.config import flag\n"
        "from . import sibling\n"
    )
    assert imported_modules(source) == {
        "numpy",
        "training.simulator",
        "torch.nn",
        "inference.config",
    }
    assert breaches(source, ("training", "inference"), ("inference.config",)) == [
        "training.simulator"
    ]
    assert breaches(source, ("torch",), ()) == ["torch.nn"]


def shared_names(paths: list[str]) -> dict[str, list[str]]:
    """File names (other than package markers) that occur more than once in `paths`."""
    by_name: dict[str, list[str]] = {}
    for path in paths:
        name = Path(path).name
        if name not in ("__init__.py", "__main__.py", "conftest.py"):
            by_name.setdefault(name, []).append(path)
    return {name: sorted(found) for name, found in by_name.items() if len(found) > 1}


def test_no_two_modules_share_a_name():
    """A name in a traceback or a review says which file it is (docs/architecture.md)."""
    paths = [str(p.relative_to(REPO)) for p in REPO.rglob("*.py") if _tracked(p)]
    assert len(paths) > 50
    assert shared_names(paths) == {}


def test_shared_names_are_found():
    found = shared_names(["a/graph.py", "b/graph.py", "a/__init__.py", "b/__init__.py", "c.py"])
    assert found == {"graph.py": ["a/graph.py", "b/graph.py"]}


def _tracked(path: Path) -> bool:
    """Part of the repository's code (not a venv, cache or build folder)."""
    parts = path.relative_to(REPO).parts
    return not any(
        part.startswith(".") or part in ("build", "dist", "out", "runs") for part in parts
    )
