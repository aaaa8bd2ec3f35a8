"""The bundle names no package host: every machine brings its own mirrors (apt, pip).

A grep over the tracked files for the hosts of package registries and Debian/Ubuntu
mirrors, and the mirror lookup that debootstrap uses instead (containers/debian_mirror.sh).
The public torch index for CUDA builds is the user's choice, not a registry we build from:
it may stand in the README and the Dockerfile only.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO / "containers/debian_mirror.sh"

# Written as patterns so that this file does not name the hosts it looks for.
FORBIDDEN = {
    "Debian archive or mirror": r"\b[\w.-]*debian\.org\b",
    "Ubuntu archive": r"\b[\w.-]*(archive|security|ports)\.ubuntu\.com\b",
    "Python package index": r"\b(pypi\.(org|python\.org)|files\.pythonhosted\.org)\b",
    "npm registry": r"\bregistry\.(npmjs\.org|yarnpkg\.com)\b",
    "conda channel": r"\b(conda\.anaconda\.org|repo\.anaconda\.com)\b",
}
TORCH_INDEX = r"\bdownload\.pytorch\.org\b"
TORCH_INDEX_MAY_STAND_IN = {"README.md", "Dockerfile"}


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    files = [REPO / name for name in listed.split("\0") if name]
    assert len(files) > 100, "git ls-files listed almost nothing: is this the bundle's checkout?"
    text = []
    for path in files:
        if path.is_file() and b"\0" not in path.read_bytes()[:8192]:
            text.append(path)
    return text


def _hits(pattern: str, allowed: set[str] = frozenset()) -> list[str]:
    found = []
    for path in _tracked_text_files():
        name = str(path.relative_to(REPO))
        if name in allowed:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(pattern, line, flags=re.IGNORECASE):
                found.append(f"{name}:{number}: {line.strip()[:120]}")
    return found


@pytest.mark.parametrize("what", sorted(FORBIDDEN))
def test_no_tracked_file_names_a_package_host(what):
    assert _hits(FORBIDDEN[what]) == [], f"a {what} host is named (take it from the machine)"


def test_the_torch_index_stands_only_where_the_user_chooses_it():
    assert _hits(TORCH_INDEX, TORCH_INDEX_MAY_STAND_IN) == []
    assert re.search(TORCH_INDEX, (REPO / "Dockerfile").read_text())  # still documented


def test_the_grep_finds_a_host_when_one_is_written():
    # the hosts are put together here, so that this file itself names none
    debian = ".".join(["ftp", "de", "deb" + "ian", "org"])
    python_index = ".".join(["py" + "pi", "org"])
    assert re.search(
        FORBIDDEN["Debian archive or mirror"], f"debootstrap bookworm /srv http://{debian}/"
    )
    assert re.search(
        FORBIDDEN["Python package index"], f"--index-url https://{python_index}/simple"
    )


def _mirror(apt_dir: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "DEBIAN_MIRROR"}
    environment.update(APT_DIR=str(apt_dir), **env)
    return subprocess.run([MIRROR], capture_output=True, text=True, env=environment)


def _apt(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "sources.list.d").mkdir(exist_ok=True)
    return tmp_path


def test_mirror_comes_from_the_deb822_release_source(tmp_path):
    apt = _apt(
        tmp_path,
        {
            "sources.list.d/a-security.sources": (
                "Types: deb\nURIs: http://mirror.example/debian-security\n"
                "Suites: bookworm-security\nComponents: main\n"
            ),
            "sources.list.d/b-debian.sources": (
                "# a disabled stanza, then a source stanza, then the release\n"
                "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
                "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
                "types: deb\nuris: http://mirror.example/debian\n"
                "suites: bookworm bookworm-updates\ncomponents: main\n"
            ),
        },
    )
    result = _mirror(apt)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://mirror.example/debian"


def test_mirror_comes_from_a_one_line_sources_list(tmp_path):
    apt = _apt(
        tmp_path,
        {
            "sources.list": (
                "# deb http://commented.example/debian bookworm main\n"
                "deb http://mirror.example/debian-security bookworm-security main\n"
                "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
            )
        },
    )
    result = _mirror(apt)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://mirror.example/debian"


def test_debian_mirror_overrides_the_apt_configuration(tmp_path):
    apt = _apt(tmp_path, {"sources.list": "deb http://mirror.example/debian bookworm main\n"})
    result = _mirror(apt, DEBIAN_MIRROR="http://chosen.example/debian")
    assert result.stdout.strip() == "http://chosen.example/debian"


def test_no_mirror_is_one_line_naming_both_places(tmp_path):
    result = _mirror(_apt(tmp_path, {}))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DEBIAN_MIRROR" in lines[0] and "sources.list" in lines[0]


def test_the_image_test_takes_its_mirror_from_the_lookup():
    script = (REPO / "containers/test_container.sh").read_text()
    assert "containers/debian_mirror.sh" in script
    assert "debootstrap" in script and '"$mirror"' in script
