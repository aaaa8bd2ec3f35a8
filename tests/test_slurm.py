"""The workflow's SLURM path on a real (one-node) SLURM cluster that the test starts and stops.

tests/slurm_cluster.py starts munged, slurmctld and slurmd as root from a generated
slurm.conf in a temporary folder. Snakemake (.venv-snakemake, or GNNTRACK_SNAKEMAKE) runs
workflow/Snakefile with a profile derived from workflow/profiles/slurm (jobs on this
machine's bundle instead of the image: Apptainer is not installed here) on two short
sequences each of a 2D dataset (the sample's frames) and a 3D one (simulated), plus one
sequence without frames (its run fails) and a longer one that the test cancels mid-run
with scancel; then it re-runs the workflow, which finishes those two and only those.
Marked `full`: ./scripts/test.sh --full (CI) runs it; where SLURM, munge, root or
Snakemake are missing it fails rather than skips.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slurm_cluster
import yaml

pytestmark = [pytest.mark.full, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SAMPLE = REPO / "data/sample/Sim-N2DH/01"
SIM, CE = "Fluo-N2DH-SIM+", "Fluo-N3DH-CE"
CE_MODEL = "parameters/Fluo-N3DH-CE-sim"
GOOD = [(SIM, "01"), (SIM, "02"), (CE, "01"), (CE, "02")]
FAILS = ("Fluo-C2DL-MSC", "01")  # a sequence folder without frames: its run script exits 2
CANCELLED = ("Fluo-N2DH-GOWT1", "01")  # long enough to be cancelled while it writes
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+)")


def _snakemake() -> str:
    """The Snakemake with the SLURM executor plugin; missing, the test fails (it is `full`)."""
    for candidate in (os.environ.get("GNNTRACK_SNAKEMAKE"), REPO / ".venv-snakemake/bin/snakemake"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail(
        "no Snakemake for the SLURM test: .venv-snakemake/bin/snakemake is missing "
        "(snakemake + snakemake-executor-plugin-slurm; or set GNNTRACK_SNAKEMAKE)"
    )


@pytest.fixture
def cluster() -> Iterator[slurm_cluster.Cluster]:
    """A started one-node cluster, stopped afterwards whatever happened (then its folder gone)."""
    missing = slurm_cluster.missing_tools()
    if missing:
        pytest.fail(f"the SLURM test needs {', '.join(missing)} (apt-get install slurm-wlm munge)")
    # not under pytest's tmp_path: munged wants every folder above its socket open to all
    folder = Path(tempfile.mkdtemp(prefix="gnntrack-slurm-"))
    started = None
    try:
        started = slurm_cluster.start(folder)
        yield started
    finally:
        left = started.stop() if started is not None else []
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"still running after the cluster stopped: {left}"


def _layout(tmp: Path) -> tuple[Path, Path]:
    """tmp/bundle (scripts, workflow, parameters, .venv) and tmp/ctc with the six sequences.

    The 2D ones hold frames of the embedded sample (FAILS none yet), the 3D ones simulated.
    """
    bundle, data = tmp / "bundle", tmp / "ctc"
    for folder in ("scripts", "workflow"):
        shutil.copytree(REPO / folder, bundle / folder)
    (bundle / "parameters").symlink_to(REPO / "parameters")
    (bundle / ".venv").symlink_to(Path(sys.prefix))
    for (dataset, seq), frames in {GOOD[0]: 4, GOOD[1]: 4, FAILS: 0, CANCELLED: 30}.items():
        (data / dataset / seq).mkdir(parents=True)
        _copy_frames(data / dataset / seq, frames, first=10 if seq == "02" else 0)
    for seq, seed in (("01", 11), ("02", 12)):
        simulated = tmp / f"sim-{seq}"
        simulate = [VENV_BIN / "gnntrack", "simulate", "--out", simulated, "--preset", CE]
        options = ["--size", "16x128x160", "--cells", "3", "--frames", "3", "--seed", str(seed)]
        subprocess.run([*simulate, *options], check=True, capture_output=True)
        shutil.move(simulated / "01", data / CE / seq)
    return bundle, data


def _copy_frames(seq: Path, frames: int, first: int = 0) -> None:
    """Frames first.. of the embedded sample into `seq`, as t000.tif ..."""
    for t in range(frames):
        shutil.copy(SAMPLE / f"t{first + t:03d}.tif", seq / f"t{t:03d}.tif")


def _profile(tmp: Path) -> Path:
    """workflow/profiles/slurm for this cluster: its partition, no account, no image, no GPU.

    Also one CPU a job (two jobs at once on two cores), no retry (a cancelled job must stay
    cancelled), status checks every few seconds by squeue (no accounting database, so no
    sacct), and the SLURM logs kept to show the job ids.
    """
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    del profile["software-deployment-method"]
    profile["default-resources"] = {"slurm_partition": slurm_cluster.PARTITION}
    profile.update(
        {
            "jobs": 4,
            "retries": 0,
            "latency-wait": 5,
            "set-threads": {"run": 1},
            "slurm-no-account": True,
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 2,
            "slurm-keep-successful-logs": True,
        }
    )
    folder = tmp / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def _snakemake_command(profile: Path, data: Path) -> list[str]:
    """The README's SLURM command, for this data and this test's profile."""
    datasets = ",".join(sorted({d for d, _ in [*GOOD, FAILS, CANCELLED]}))
    config = [f"data={data}", f"datasets=[{datasets}]", f"models={{{CE}: {CE_MODEL}}}"]
    return [
        _snakemake(),
        "-s",
        "workflow/Snakefile",
        "--profile",
        str(profile),
        "--config",
        *config,
    ]


def _cancel_mid_run(
    cluster: slurm_cluster.Cluster, data: Path, run: subprocess.Popen, log: Path
) -> str:
    """Wait until CANCELLED's job writes its result, scancel it; return its SLURM job id."""
    dataset, seq = CANCELLED
    comment = f"wildcards_{dataset}_{seq}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and run.poll() is None:
        jobs = cluster.run("squeue", "-h", "-t", "running", "-o", "%i %k", check=False).stdout
        ids = [line.split()[0] for line in jobs.splitlines() if line.endswith(comment)]
        if ids and list((data / dataset).glob(f".{seq}_RES.tmp-*")):
            cluster.run("scancel", ids[0])
            return ids[0]
        time.sleep(0.2)
    pytest.fail(f"{dataset}/{seq} was never seen writing\n{log.read_text()}\n{cluster.logs()}")


def _wait_until_ended(cluster: slurm_cluster.Cluster, job: str) -> None:
    """Wait until `job` is no longer pending, running or completing (its processes gone)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not cluster.run("squeue", "-h", "-j", job, "-t", "PD,R,CG", check=False).stdout.strip():
            return
        time.sleep(0.2)
    pytest.fail(f"job {job} still runs a minute after it ended\n{cluster.logs()}")


def _state(cluster: slurm_cluster.Cluster, job: str) -> dict[str, str]:
    """`scontrol show job`'s fields of one job (MinJobAge keeps ended jobs there)."""
    out = cluster.run("scontrol", "show", "job", "-o", job).stdout
    return dict(word.split("=", 1) for word in out.split() if "=" in word)


def _expected_request(dataset: str, frames: int) -> tuple[int, int]:
    """Memory (MB) and time limit (min) that workflow/resources.yaml sets for one job."""
    config = yaml.safe_load((REPO / "workflow/config.yaml").read_text())
    row = yaml.safe_load((REPO / "workflow/resources.yaml").read_text())["measured"][dataset]
    memory = math.ceil((row["peak_mb"] * config["margin"] + config["snakemake_mb"]) / 100) * 100
    seconds = (row["startup_s"] + frames * row["s_per_frame"]) * config["margin"]
    return memory, max(math.ceil(seconds / 60), config["min_runtime"])


def _stamps(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file of a result folder: inode, modification time and content."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()
    }


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file of a result folder, by name."""
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _validate(data: Path, dataset: str, seq: str) -> None:
    """`gnntrack validate` on one result, against its frames."""
    res, images = data / dataset / f"{seq}_RES", data / dataset / seq
    check = [VENV_BIN / "gnntrack", "validate", res, "--images", images]
    done = subprocess.run(check, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _job_names(output: str) -> set[tuple[str, str]]:
    """(dataset, seq) of every job in Snakemake's output (its input: <data>/<Dataset>/<Seq>)."""
    return set(re.findall(r"input: \S+/([^/\s]+)/(\d\d)$", output, re.M))


def _reference(tmp: Path, bundle: Path, data: Path) -> Path:
    """The GOOD sequences run by their run scripts without SLURM (one thread, as the jobs)."""
    ref = tmp / "ref"
    for dataset, seq in GOOD:
        shutil.copytree(data / dataset / seq, ref / dataset / seq)
        env = {**os.environ, "GNNTRACK_DATA": str(ref), "GNNTRACK_THREADS": "1"}
        env["TMPDIR"] = str(tmp)
        if dataset == CE:
            env["GNNTRACK_PARAMS"] = str(REPO / CE_MODEL)
        script = [f"./scripts/{dataset}-{seq}.sh"]
        done = subprocess.run(script, cwd=bundle, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    return ref


def _leftovers(data: Path, scratch: Path) -> list[str]:
    """Temporary folders of a run anywhere: hidden result siblings, scratch folders."""
    hidden = [str(p) for p in data.glob("*/.*_RES.*")]
    return hidden + [str(p) for p in scratch.iterdir()]


def test_workflow_runs_on_slurm_and_resumes_after_a_failure_and_a_cancel(cluster, tmp_path, capsys):
    bundle, data = _layout(tmp_path)
    profile = _profile(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {k: v for k, v in cluster.env.items() if not k.startswith("GNNTRACK_")}
    env["TMPDIR"] = str(scratch)
    command = _snakemake_command(profile, data)

    # 1. six jobs through sbatch: four finish, one fails, one is cancelled mid-run
    log = tmp_path / "snakemake-1.log"  # a file, not a pipe nobody reads while it runs
    with log.open("w") as sink:
        run = subprocess.Popen(command, cwd=bundle, env=env, stdout=sink, stderr=sink)
        try:
            cancelled = _cancel_mid_run(cluster, data, run, log)
            run.wait(timeout=300)
        finally:
            run.kill()
    out = log.read_text()
    assert run.returncode != 0, out
    _wait_until_ended(cluster, cancelled)  # SLURM says CANCELLED while the job cleans up
    ids = SUBMITTED.findall(out)
    assert len(ids) == len(set(ids)) == 6, out
    with capsys.disabled():  # in the test run's own log, not only on failure
        print("\nSLURM job ids of the first run:", ids, "cancelled:", cancelled)
    errors = re.findall(r"^Error in rule run:\n(?:    .*\n)+", out, re.M)  # indented block
    assert len(errors) == 2 and _job_names("".join(errors)) == {FAILS, CANCELLED}, out
    assert f"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'" in out, out
    assert "input missing" in (bundle / "out/workflow/logs/{}-{}.log".format(*FAILS)).read_text()
    for dataset, seq in (FAILS, CANCELLED):
        assert sorted(p.name for p in (data / dataset).iterdir()) == [seq]  # no result
        assert not (bundle / f"out/workflow/done/{dataset}-{seq}.txt").exists()
    assert _leftovers(data, scratch) == []

    # what SLURM ran: one job per sequence, with the resources measured for its dataset
    states = {job: _state(cluster, job) for job in ids}
    ended = sorted(state["JobState"] for state in states.values())
    assert ended == ["CANCELLED", *["COMPLETED"] * 4, "FAILED"], states
    for job, state in states.items():
        dataset, seq = re.search(r"wildcards_(.+)_(\d\d)$", state["Comment"]).groups()
        memory, minutes = _expected_request(dataset, len(list((data / dataset / seq).iterdir())))
        assert state["MinMemoryNode"] == f"{memory}M" and state["NumCPUs"] == "1", state
        assert state["TimeLimit"] == f"{minutes // 60:02d}:{minutes % 60:02d}:00", state
        assert (bundle / f".snakemake/slurm_logs/rule_run/{dataset}_{seq}/{job}.log").is_file()

    # every result validates and equals the same run without SLURM
    ref = _reference(tmp_path, bundle, data)
    for dataset, seq in GOOD:
        _validate(data, dataset, seq)
        res = _contents(data / dataset / f"{seq}_RES")
        assert res == _contents(ref / dataset / f"{seq}_RES"), (dataset, seq)
        log = (bundle / f"out/workflow/logs/{dataset}-{seq}.log").read_text()
        assert "(1 CPU threads)" in log, log  # the job's CPUs, handed to torch and numba
    # Snakemake's own files stay in the bundle: beside the data only sequences and results
    for dataset in (SIM, CE):
        assert sorted(p.name for p in (data / dataset).iterdir()) == [
            "01",
            "01_RES",
            "02",
            "02_RES",
        ]
    assert (bundle / ".snakemake").is_dir() and (bundle / "out/workflow/done").is_dir()
    before = {(d, s): _stamps(data / d / f"{s}_RES") for d, s in GOOD}

    # 2. once the input is there, the re-run submits the two missing jobs and only those
    _copy_frames(data.joinpath(*FAILS), 4)
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    again = subprocess.run(command, cwd=bundle, env=env, timeout=300, **pipe)
    assert again.returncode == 0, again.stdout
    rerun = SUBMITTED.findall(again.stdout)
    with capsys.disabled():
        print("\nSLURM job ids of the re-run:", rerun)
    assert len(rerun) == 2 and not set(rerun) & set(ids), again.stdout
    assert _job_names(again.stdout) == {FAILS, CANCELLED}, again.stdout
    assert {(d, s): _stamps(data / d / f"{s}_RES") for d, s in GOOD} == before  # untouched
    for dataset, seq in (FAILS, CANCELLED):
        _validate(data, dataset, seq)
    assert _leftovers(data, scratch) == []

    # every daemon stops (the fixture stops them again, should the test fail before here)
    pids = cluster.pids()
    assert set(pids) == set(slurm_cluster.DAEMONS)
    assert cluster.stop() == []
    assert not any(slurm_cluster.is_running(pid) for pid in pids.values())
