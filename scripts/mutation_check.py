"""Apply each mutation of `scripts/mutations.py` to a copy of the repository and run the tests.

Every mutation must make the default test run (`pytest -m "not full"`) fail; the check prints
which test caught each one and exits 1 if any survives (2 if a mutation is stale or the
tests fail without any mutation). Run it as `./scripts/mutation_check.sh [--only NAME ...]`.

The copy holds the working tree's files (tracked, and untracked ones git does not ignore)
and a link to this repository's `.venv`; `PYTHONPATH` points at the copy, so its code, not
the editable install's, is what the tests and the `gnntrack` command import. Each mutation
first runs the tests named for it (`pytest -x`: a caught mutation stops at the first
failure), then, only if they pass, the whole default run, so a mutation that a test
elsewhere catches is still reported as caught (by a test that passes without it).
`tests/test_mutations.py` is left out of that run: it reads the mutations' text, which no
longer occurs in a mutant, so it would report every mutation caught. A link to `../shared`
beside the copy gives the tests the real data the checkout has.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutations import MUTATIONS, Mutation  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    """What the tests did with one mutation."""

    mutation: Mutation
    caught: bool
    by: list[str]
    seconds: float
    note: str = ""


def stale_edits(root: Path, mutation: Mutation) -> list[str]:
    """Edits whose old text does not occur exactly once in `root`/file (after the earlier ones)."""
    path = root / mutation.file
    if not path.is_file():
        return [f"{mutation.file} does not exist"]
    text, problems = path.read_text(), []
    for old, new in mutation.edits:
        count = text.count(old)
        if count != 1:
            problems.append(f"{mutation.file}: {old!r} occurs {count} times, not once")
        text = text.replace(old, new, 1)
    return problems


def repository_files() -> list[str]:
    """The files the tests see: tracked ones and untracked ones git does not ignore (work
    under way), but no hidden untracked folder (another virtual environment, caches)."""

    def listed(*options: str) -> list[str]:
        out = subprocess.run(
            ["git", "ls-files", "-z", *options], cwd=REPO, check=True, capture_output=True
        ).stdout.decode()
        return [name for name in out.split("\0") if name]

    untracked = [n for n in listed("--others", "--exclude-standard") if not n.startswith(".")]
    return sorted(set(listed("--cached")) | set(untracked))


def copy_repository(target: Path) -> None:
    """The working tree's files as they are now (`repository_files`), a link to .venv, and
    beside the copy a link to `../shared` where the checkout has one: the tests on real
    data then run on the mutants as they do in CI, instead of skipping."""
    shared = REPO.parent / "shared"
    if shared.is_dir() and not (target.parent / "shared").exists():
        (target.parent / "shared").symlink_to(shared.resolve())
    for name in repository_files():
        source = REPO / name
        if source.is_file() or source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)
    (target / ".venv").symlink_to(REPO / ".venv")


def run_pytest(root: Path, tests: list[str], timeout: float) -> tuple[int, list[str], str]:
    """pytest -x on `tests` in `root`: exit status, failed test ids, last lines of output."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    )
    command = [str(REPO / ".venv/bin/python"), "-m", "pytest", "-x", "-q", "-m", "not full"]
    command += ["-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return -1, [], f"timed out after {timeout:.0f} s"
    failed = [
        line.split(" ", 1)[1].split(" - ", 1)[0]
        for line in done.stdout.splitlines()
        if line.startswith(("FAILED ", "ERROR "))
    ]
    return done.returncode, failed, "\n".join(done.stdout.splitlines()[-15:])


def check(root: Path, mutation: Mutation, timeout: float) -> Outcome:
    """Apply `mutation` in `root`, run its tests then the rest, and restore the file.

    A test of the second run counts only if it passes without the mutation: one that fails
    anyway (another change under way, a missing tool) is deselected and the run repeated.
    """
    path = root / mutation.file
    original = path.read_text()
    mutated = original
    for old, new in mutation.edits:
        mutated = mutated.replace(old, new, 1)
    start = time.monotonic()
    path.write_text(mutated)
    try:
        status, failed, tail = run_pytest(root, list(mutation.tests), timeout)
        broken: list[str] = []
        while status == 0 or broken:  # the named tests missed it: the whole default run
            deselect = [arg for test in broken for arg in ("--deselect", test)]
            # test_mutations checks each mutation's text, which a mutant fails by definition
            deselect += ["--ignore", "tests/test_mutations.py"]
            status, failed, tail = run_pytest(root, ["tests", *deselect], timeout)
            if status == 0 or not failed:
                break
            if len(broken) >= 10:  # too many tests fail anyway to tell anything
                status, failed, tail = -2, [], "ten or more tests fail without the mutation"
                break
            path.write_text(original)
            fails_anyway = run_pytest(root, failed, timeout)[0] != 0
            path.write_text(mutated)
            if not fails_anyway:
                break
            broken += failed
    finally:
        path.write_text(original)
    seconds = time.monotonic() - start
    note = f" (failing without it too: {', '.join(broken)})" if broken else ""
    if status == 0:
        return Outcome(mutation, False, [], seconds, "every test passed" + note)
    if not failed:  # an error pytest could not attribute to a test (or a timeout)
        return Outcome(mutation, False, [], seconds, f"pytest exit {status}{note}: {tail}")
    return Outcome(mutation, True, failed, seconds)


def print_table(outcomes: list[Outcome]) -> None:
    width = max(len(o.mutation.name) for o in outcomes)
    print(f"\n{'mutation':<{width}}  caught  {'seconds':>7}  caught by")
    for o in outcomes:
        by = ", ".join(o.by) if o.caught else o.note.splitlines()[0] if o.note else "-"
        print(
            f"{o.mutation.name:<{width}}  {'yes' if o.caught else 'NO':<6}  {o.seconds:7.0f}  {by}"
        )
    for o in outcomes:
        if not o.caught and o.note:
            print(f"\n{o.mutation.name} survived ({o.mutation.why}):\n{o.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per pytest run")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.only and len(chosen) != len(set(args.only)):
        known = ", ".join(m.name for m in MUTATIONS)
        parser.error(f"unknown mutation in {args.only}; known: {known}")
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.why}\n    {m.file}; caught by {', '.join(m.tests)}")
        return 0
    stale = [problem for m in chosen for problem in stale_edits(REPO, m)]
    if stale:
        print("stale mutations (update scripts/mutations.py):\n  " + "\n  ".join(stale))
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gnntrack-mutants-") as tmp:
        root = Path(tmp) / REPO.name
        root.mkdir()
        copy_repository(root)
        named = list(dict.fromkeys(t for m in chosen for t in m.tests))
        print(f"baseline: the {len(named)} catching tests, unmutated", flush=True)
        status, failed, tail = run_pytest(root, named, args.timeout)
        if status != 0:
            print(f"the catching tests fail without any mutation ({', '.join(failed)}):\n{tail}")
            return 2
        outcomes = []
        for mutation in chosen:
            print(f"{mutation.name}: {mutation.why}", flush=True)
            outcomes.append(check(root, mutation, args.timeout))
    print_table(outcomes)
    survived = [o.mutation.name for o in outcomes if not o.caught]
    minutes = (time.monotonic() - started) / 60
    caught = len(outcomes) - len(survived)
    print(f"\n{caught} of {len(outcomes)} mutations caught in {minutes:.1f} min")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
