"""The run scripts' generator (scripts/generate_run_scripts.py), loaded once as a module for
the tests that read its dataset table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

GENERATOR = Path(__file__).resolve().parents[1] / "scripts" / "generate_run_scripts.py"
NAME = "generate_run_scripts"


def load_generator() -> ModuleType:
    """The generator module (loaded from its file: scripts/ is not a package)."""
    if NAME in sys.modules:
        return sys.modules[NAME]
    spec = importlib.util.spec_from_file_location(NAME, GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module
