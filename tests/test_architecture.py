"""The layers keep their rules (docs/architecture.md): an import that breaks one fails here.

Every import statement of a layer's files is read (module level and inside functions).
"""

from __future__ import annotations

import ast
import subprocess
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


def _layout_table() -> str:
    """The README's layout table: the lines between '## Layout' and the next heading."""
    text = (REPO / "README.md").read_text()
    return text.split("## Layout", 1)[1].split("\n## ", 1)[0]


def _packages_and_modules(root: str) -> list[str]:
    """What a reader of `root` sees first: its sub-packages (`name/`) and top-level modules."""
    found = []
    for path in sorted((REPO / root).iterdir()):
        if path.is_dir() and (path / "__init__.py").exists():
            found.append(path.name + "/")
        elif path.suffix == ".py" and path.name not in ("__init__.py", "__main__.py"):
            found.append(path.name)
    return found


@pytest.mark.parametrize("root", ["inference", "training"])
def test_readme_layout_names_every_package_and_module(root):
    """The README's layout table matches the tree: a new package or module must be named."""
    table = _layout_table()
    assert f"`{root}/`" in table
    missing = [name for name in _packages_and_modules(root) if f"`{name}`" not in table]
    assert missing == [], f"README layout table does not name {root}/{missing}"


def test_readme_layout_names_every_top_level_folder():
    table = _layout_table()
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    folders = sorted({f.split("/")[0] for f in listed if "/" in f and not f.startswith(".")})
    assert len(folders) >= 8
    missing = [f for f in folders if f"`{f}/`" not in table and f"`{f}" not in table]
    assert missing == [], f"README layout table does not name {missing}"


def test_architecture_doc_names_every_inference_package_and_module():
    """docs/architecture.md's picture has a place for each piece of the pipeline."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    names = [n.rstrip("/") for n in _packages_and_modules("inference")]
    missing = [n for n in names if n.removesuffix(".py") not in doc]
    assert missing == []
