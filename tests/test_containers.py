"""The container definitions: linted, checked against each other and the bundle, built.

The real build (`containers/test_container.sh`: buildah, a local Debian base, a run script
inside the image) takes minutes: it is marked `full`, run by `./scripts/test.sh --full` (CI),
which installs buildah, podman and debootstrap first (scripts/setup_test_tools.sh).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
ENTRYPOINT = "/ctc/gnntrack/containers/entrypoint.sh"
SHELL_SCRIPTS = sorted([*(REPO / "scripts").glob("*.sh"), *(REPO / "containers").glob("*.sh")])


def _tool(name: str) -> str:
    path = shutil.which(name, path=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    if path is None:  # a missing tool is a failure, not a skip: setup installs them all
        pytest.fail(
            f"{name} not installed: run ./scripts/setup.sh --dev (pip) or, for the "
            "image tools, ./scripts/setup_test_tools.sh --full (apt, as root)"
        )
    return path


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split()[0].upper(), ln.split(maxsplit=1)[1]) for ln in lines]


def _def_sections() -> tuple[dict[str, str], dict[str, str]]:
    """Header keywords and %sections of Singularity.def."""
    header, sections, current = {}, {}, None
    for line in (REPO / "Singularity.def").read_text().splitlines():
        if line.startswith("%"):
            current = line[1:].split()[0]
            sections[current] = ""
        elif current is not None:
            sections[current] += line.strip() + "\n"
        elif ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            header[key.strip()] = value.strip()
    return header, sections


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_tool("hadolint"), "Dockerfile"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_pass_shellcheck():
    result = subprocess.run(
        [_tool("shellcheck"), *SHELL_SCRIPTS], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_dockerfile_takes_base_and_torch_build_as_arguments_and_runs_unprivileged():
    steps = _dockerfile()
    args = dict((a + "=").split("=")[:2] for i, a in steps if i == "ARG")
    assert args["BASE"] and steps[[i for i, _ in steps].index("FROM")][1] == "${BASE}"
    assert args["TORCH_INDEX"].endswith("/whl/cpu")  # CPU by default
    assert [a for i, a in steps if i == "USER"] == ["1000:1000"]
    assert json.loads([a for i, a in steps if i == "ENTRYPOINT"][0]) == [ENTRYPOINT]
    install = " ".join(a for i, a in steps if i == "RUN")
    assert "-c constraints.txt" in install  # the pinned versions


def test_everything_the_dockerfile_copies_passes_dockerignore():
    rules = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]

    def included(path: str) -> bool:  # last matching rule wins, as Docker's
        keep = True
        for rule in rules:
            negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = negate
        return keep

    sources = [
        src
        for i, a in _dockerfile()
        if i == "COPY"
        for src in a.split()[:-1]
        if not src.startswith("--")
    ]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), src
        assert included(src), f"{src} is excluded by .dockerignore"
    assert not included(".venv") and not included(".git")


def test_singularity_def_bootstraps_from_the_docker_image_with_its_entry_point():
    header, sections = _def_sections()
    assert header["Bootstrap"] == "docker-archive"
    build = (REPO / "containers/build.sh").read_text()
    assert header["From"] in build  # the archive build.sh writes from the Docker image
    assert {"help", "runscript", "test"} <= set(sections)
    assert sections["runscript"].strip() == f'exec {ENTRYPOINT} "$@"'
    assert sections["test"].strip() == f"exec {ENTRYPOINT} selftest"
    spython = pytest.importorskip("spython.main.parse.parsers")
    recipe = spython.SingularityParser(str(REPO / "Singularity.def")).recipe["spython-base"]
    assert recipe.fromHeader == header["From"]
    assert ENTRYPOINT in recipe.cmd


def _entrypoint(*args: str, **environment: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{VENV_BIN}:/usr/bin:/bin", **environment)
    return subprocess.run(
        [REPO / "containers/entrypoint.sh", *args], env=env, capture_output=True, text=True
    )


def test_entrypoint_lists_and_dispatches_to_the_run_scripts():
    listing = _entrypoint("help")
    assert listing.returncode == 0
    assert all(p.stem in listing.stdout for p in (REPO / "scripts").glob("*-0[12].sh"))
    assert _entrypoint("No-Such-Dataset-01").returncode == 2
    # a run script by name, here one without its dataset beside the bundle
    missing = _entrypoint("Fluo-N3DL-TRIF-02")
    assert missing.returncode == 2 and "input missing" in missing.stderr
    assert _entrypoint("gnntrack", "--version").stdout.startswith("gnntrack")


def test_entrypoint_selftest_passes_outside_the_image():
    result = _entrypoint("selftest")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "selftest: passed" in result.stdout
    for measure in ("TRA", "SEG", "LNK", "tp_div(0)"):  # scores are checked, not only printed
        assert f"selftest: {measure} " in result.stdout and "TOO LOW" not in result.stdout


def test_entrypoint_selftest_fails_on_low_scores(tmp_path):
    """A tracker that links nothing (radii of 0.01 px) still gives a valid result: the
    selftest must refuse it by its scores (the run script takes it from GNNTRACK_PARAMS)."""
    params = tmp_path / "params"
    shutil.copytree(REPO / "parameters/Fluo-N2DH-SIM+", params)
    config_path = params / "tracker/config.json"
    config = json.loads(config_path.read_text())
    config["graph"].update(radius=0.01, radius_gap=0.01)
    config_path.write_text(json.dumps(config))
    result = _entrypoint("selftest", GNNTRACK_PARAMS=str(params))
    assert result.returncode != 0, result.stdout
    assert "selftest: LNK" in result.stdout and "TOO LOW" in result.stdout
    assert "selftest: passed" not in result.stdout


@pytest.mark.slow
@pytest.mark.full  # minutes: ./scripts/test.sh --full (CI)
def test_image_builds_and_runs_a_run_script_on_the_sample():
    for tool in ("buildah", "podman"):
        _tool(tool)
    result = subprocess.run(
        [REPO / "containers/test_container.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "passed:" in result.stderr
