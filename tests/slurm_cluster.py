"""A one-node SLURM cluster on this machine, for tests: munged, slurmctld and slurmd as root.

Everything lives in one temporary folder (slurm.conf, the munge key and socket, state and
spool folders, logs, pid files, an srun wrapper) and talks over localhost only. `start`
returns once `sinfo` shows the node idle; `Cluster.stop` cancels what still runs, stops the
daemons and says which processes, if any, outlived that. Client commands find the cluster
through SLURM_CONF (and PATH, for srun inside jobs) in `Cluster.env`, which every command of
the test must get.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "scancel",
    "sinfo",
    "scontrol",
)
DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITION = "local"


def missing_tools() -> list[str]:
    """What a cluster needs but this machine lacks (root, or SLURM and munge's commands)."""
    missing = [name for name in TOOLS if shutil.which(name) is None]
    if os.geteuid() != 0:
        missing.append("root (the daemons run as root, as CI runs the tests)")
    return missing


@dataclass
class Cluster:
    """A started cluster: its folder, the environment for its clients, its daemons."""

    folder: Path
    env: dict[str, str]
    node: str
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, check=check, timeout=30
        )

    def logs(self) -> str:
        """The daemons' logs, last lines: what to show when the cluster misbehaves."""
        parts = []
        for log in sorted((self.folder / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def pids(self) -> dict[str, int]:
        """Each daemon's pid, from its pid file where it wrote one, else from its process."""
        found = {name: proc.pid for name, proc in self.daemons.items()}
        for name in DAEMONS:
            pid_file = self.folder / f"{name}.pid"
            if pid_file.is_file() and pid_file.read_text().strip().isdigit():
                found[name] = int(pid_file.read_text().strip())
        return found

    def stop(self) -> list[str]:
        """Cancel every job, stop slurmd, slurmctld and munged; return what still runs.

        Idempotent: the test calls it to check the result, its fixture again in `finally`.
        Job processes (slurmstepd and the job's own) are found by this cluster's SLURM_CONF
        in their environment, which they inherit from slurmd or from the submitting command.
        """
        if self.alive("slurmctld"):
            for job in self._active_jobs():
                self.run("scancel", job, check=False)
            deadline = time.monotonic() + 45  # KillWait and slurmstepd's own clean-up
            while self._active_jobs() and time.monotonic() < deadline:
                time.sleep(0.5)
        pids = self.pids()
        started = {name: proc.pid for name, proc in self.daemons.items()}
        for name in reversed(DAEMONS):
            proc = self.daemons.get(name)
            for pid in {pids.get(name), started.get(name)} - {None}:  # the same, normally
                _terminate(pid, proc if proc is not None and proc.pid == pid else None)
        for pid in self._job_processes():
            _terminate(pid, None)
        still = [
            f"{name} (pid {pid})"
            for name, pid in [*pids.items(), *started.items()]
            if is_running(pid)
        ]
        return sorted(set(still)) + [f"job process {pid}" for pid in self._job_processes()]

    def _active_jobs(self) -> list[str]:
        """Jobs pending, running or completing."""
        return self.run("squeue", "-h", "-o", "%i", check=False).stdout.split()

    def alive(self, name: str) -> bool:
        """Whether the daemon `name` still runs."""
        pid = self.pids().get(name)
        return pid is not None and is_running(pid)

    def _job_processes(self) -> list[int]:
        """Processes of this cluster that are not its daemons: jobs, slurmstepd, helpers."""
        marker = f"SLURM_CONF={self.env['SLURM_CONF']}".encode()
        daemons = set(self.pids().values())
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in daemons:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if marker in environ.split(b"\0") and int(entry.name) != os.getpid():
                found.append(int(entry.name))
        return found


def is_running(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _terminate(pid: int, proc: subprocess.Popen | None, grace: float = 15.0) -> None:
    """SIGTERM `pid`, SIGKILL it if it outlives `grace` seconds; reap it if it is our child."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not is_running(pid):
            break
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while is_running(pid) and time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.2)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _real_memory_mb() -> int:
    """The node's memory as slurmd itself measures it (a larger RealMemory drains the node)."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    for word in out.split():
        if word.startswith("RealMemory="):
            return int(word.split("=", 1)[1])
    raise RuntimeError(f"slurmd -C printed no RealMemory:\n{out}")


def write_conf(folder: Path, node: str) -> Path:
    """A minimal slurm.conf: one node (this machine: its CPUs and memory), no accounting.

    No cgroups: processes are tracked by /proc (linuxproc), tasks not bound (task/none).
    """
    conf = folder / "slurm.conf"
    log = folder / "log"
    memory = _real_memory_mb()
    cpus = len(os.sched_getaffinity(0))  # nproc: the CPUs this machine lets the test use
    conf.write_text(
        f"""\
ClusterName=gnntrack-test
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={log}/slurmctld.log
SlurmdLogFile={log}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# ended jobs stay visible to squeue and scontrol for the whole test (no sacct here)
MinJobAge=900
# SLURM's default: a cancelled job has time to remove its unfinished output
KillWait=30
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    )
    return conf


def _srun_wrapper(folder: Path, conf: Path) -> Path:
    """A folder with an `srun` that names this cluster's slurm.conf; return the folder.

    snakemake-executor-plugin-slurm-jobstep drops every SLURM_* variable but the job's
    identity before its `srun` inside a job, SLURM_CONF included. A real cluster keeps its
    slurm.conf where srun looks without it (/etc/slurm, or slurmd's configless copy); this
    one lives in the temporary folder, so its jobs' srun is told where.
    """
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    real = shutil.which("srun")
    srun.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec "{real}" "$@"\n')
    srun.chmod(0o755)
    return bin_dir


def _wait(what: str, ready, cluster: Cluster, timeout: float = 60.0) -> None:
    """Poll `ready()` until true; otherwise fail with the daemons' logs."""
    deadline = time.monotonic() + timeout
    while not ready():
        for name, proc in cluster.daemons.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode})\n{cluster.logs()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {timeout:.0f} s\n{cluster.logs()}")
        time.sleep(0.5)


def start(folder: Path) -> Cluster:
    """Start munged, slurmctld and slurmd in `folder`; return once the node is idle.

    The daemons run in the foreground as children of the test (-F, -D), so that nothing
    detaches from it; each still writes its pid file. A failure here stops what started.
    """
    folder.chmod(0o755)  # munged refuses a socket folder that others cannot traverse
    for sub in ("state", "spool", "log"):
        (folder / sub).mkdir()
    node = socket.gethostname().split(".")[0]
    conf = write_conf(folder, node)
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": f"{_srun_wrapper(folder, conf)}:"}
    env["PATH"] += os.environ.get("PATH", os.defpath)
    cluster = Cluster(folder, env, node)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    commands = {
        "munged": [
            "munged",
            "-F",
            f"--key-file={key}",
            f"--socket={folder}/munge.socket",
            f"--pid-file={folder}/munged.pid",
            f"--log-file={folder}/log/munged.log",
            f"--seed-file={folder}/munge.seed",
        ],
        "slurmctld": ["slurmctld", "-D", "-f", str(conf)],
        "slurmd": ["slurmd", "-D", "-f", str(conf), "-N", node],
    }
    try:
        for name, command in commands.items():
            out = (folder / "log" / f"{name}.out").open("w")
            cluster.daemons[name] = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            out.close()
            if name == "munged":
                _wait("munge socket", (folder / "munge.socket").exists, cluster)
        _wait("idle node in sinfo", lambda: _node_state(cluster) == "idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _node_state(cluster: Cluster) -> str:
    """The node's state as `sinfo` shows it ("" while slurmctld does not answer)."""
    out = cluster.run("sinfo", "-h", "-N", "-o", "%t", check=False)
    return out.stdout.strip() if out.returncode == 0 else ""
