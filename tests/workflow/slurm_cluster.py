"""A real single-node SLURM cluster with accounting, started (and stopped) by the tests.

Debian's munge, MariaDB, slurmdbd, slurmctld and slurmd, all run by hand in the foreground
(there is no systemd), with state, database and logs under one temporary folder. The two config
files must sit at SLURM's default place, /etc/slurm: the executor plugin clears every SLURM_*
variable (SLURM_CONF too) inside a job before it calls srun. They are removed again on exit,
and a machine that already has a slurm.conf is left alone (see ``existing_config``).
Facts behind the settings: ../shared/docs/SLURM_NOTES.md.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
CONF_DIR = Path("/etc/slurm")
CLUSTER, ACCOUNT, PARTITION = "histodistill", "histodistill_ci", "ci"


def missing_binaries() -> list[str]:
    tools = [*DAEMONS, "munge", "mariadb-install-db", "mariadb", "sacctmgr", "sbatch", "sacct",
             "sinfo"]
    return [t for t in tools if shutil.which(t, path=os.environ.get("PATH", "") +
                                             ":/usr/sbin:/usr/bin") is None]


def existing_config() -> Path | None:
    """A slurm.conf this test did not write (a real cluster's: never touched)."""
    conf = CONF_DIR / "slurm.conf"
    return conf if conf.exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float = 60.0, logs: list[Path] | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.5)
    tail = "".join(f"\n--- {p}:\n{p.read_text()[-2000:]}" for p in logs or [] if p.exists())
    raise RuntimeError(f"SLURM test cluster: {what} did not come up in {timeout:.0f} s{tail}")


class SlurmCluster:
    """``with SlurmCluster(tmp) as cluster:`` - up on entry, every daemon stopped on exit."""

    def __init__(self, root: Path, cpus: int = 2, memory_mb: int = 16000) -> None:
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.cpus, self.memory_mb = cpus, memory_mb
        self.procs: list[subprocess.Popen] = []
        self.written: list[Path] = []
        self.env = {**os.environ, "SLURM_CONF": str(CONF_DIR / "slurm.conf"),
                    "PATH": os.environ.get("PATH", "") + ":/usr/sbin"}

    # ---- helpers -------------------------------------------------------------------------

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout}{proc.stderr}")
        return proc

    def _start(self, name: str, *cmd: str) -> None:
        log = open(self.root / f"{name}.out", "w")  # noqa: SIM115 - closed with the process
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT))

    def _write(self, name: str, lines: list[str]) -> Path:
        path = CONF_DIR / name
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        self.written.append(path)
        path.write_text("\n".join(lines) + "\n")
        return path

    def _ok(self, *cmd: str) -> bool:
        return self.run(*cmd, check=False).returncode == 0

    # ---- the daemons -------------------------------------------------------------------

    def __enter__(self) -> SlurmCluster:
        if existing_config():
            raise RuntimeError(f"{existing_config()} exists: not starting a second cluster")
        try:
            self._munge()
            self._mariadb()
            self._slurmdbd()
            self._slurm()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _munge(self) -> None:
        """munged on its default socket (SLURM's client commands talk to slurmdbd through it
        whatever AuthInfo says); an already running munged is used as it is."""
        if self._ok("munge", "-n"):
            return
        run = Path("/run/munge")
        run.mkdir(exist_ok=True)
        shutil.chown(run, "munge", "munge")
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True)
        self._start("munged", "runuser", "-u", "munge", "--", "munged", "--foreground",
                    f"--log-file={self.root / 'munged.log'}")
        _wait("munged", lambda: self._ok("munge", "-n"), logs=[self.root / "munged.out"])

    def _mariadb(self) -> None:
        data = self.root / "db"
        subprocess.run(["mariadb-install-db", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        self.db_port, self.db_socket = _free_port(), self.root / "mysql.sock"
        self._start("mariadbd", "mariadbd", "--no-defaults", f"--datadir={data}", "--user=root",
                    f"--socket={self.db_socket}", f"--port={self.db_port}",
                    "--bind-address=127.0.0.1", f"--pid-file={self.root / 'mariadb.pid'}",
                    "--innodb-buffer-pool-size=64M")
        sql = ("CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';"
               "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
        _wait("MariaDB", lambda: self._ok("mariadb", f"--socket={self.db_socket}", "-uroot",
                                          "-e", "SELECT 1"), logs=[self.root / "mariadbd.out"])
        self.run("mariadb", f"--socket={self.db_socket}", "-uroot", "-e", sql)

    def _slurmdbd(self) -> None:
        self.dbd_port = _free_port()
        conf = self._write("slurmdbd.conf", [
            "AuthType=auth/munge", "DbdHost=localhost", f"DbdPort={self.dbd_port}",
            "SlurmUser=root",
            "StorageType=accounting_storage/mysql", "StorageHost=127.0.0.1",
            f"StoragePort={self.db_port}", "StorageUser=slurm", "StoragePass=slurm",
            "StorageLoc=slurm_acct_db", f"PidFile={self.root / 'slurmdbd.pid'}",
            f"LogFile={self.root / 'slurmdbd.log'}"])
        conf.chmod(0o600)
        self._write_slurm_conf()
        self._start("slurmdbd", "slurmdbd", "-D")
        _wait("slurmdbd", lambda: self._ok("sacctmgr", "-n", "list", "cluster"),
              logs=[self.root / "slurmdbd.out", self.root / "slurmdbd.log"])
        self.run("sacctmgr", "-i", "add", "cluster", CLUSTER)
        self.run("sacctmgr", "-i", "add", "account", ACCOUNT, f"cluster={CLUSTER}")
        self.run("sacctmgr", "-i", "add", "user", "root", f"account={ACCOUNT}",
                 f"cluster={CLUSTER}")

    def _write_slurm_conf(self) -> None:
        state = self.root / "state"
        (state / "ctld").mkdir(parents=True)
        (state / "d").mkdir()
        self._write("slurm.conf", [
            f"ClusterName={CLUSTER}", f"SlurmctldHost={self.host}", "SlurmUser=root",
            "AuthType=auth/munge", "CredType=cred/munge",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            "MpiDefault=none", "ReturnToService=2", "MinJobAge=300",
            f"StateSaveLocation={state / 'ctld'}", f"SlurmdSpoolDir={state / 'd'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'slurmd.log'}",
            "AccountingStorageType=accounting_storage/slurmdbd",
            "AccountingStorageHost=localhost", f"AccountingStoragePort={self.dbd_port}",
            "AccountingStorageEnforce=associations", "AccountingStoreFlags=job_comment",
            # poll every job's memory each second and kill it over its request, as a
            # cgroup-enforcing cluster does (there is no cgroup here)
            "JobAcctGatherType=jobacct_gather/linux", "JobAcctGatherFrequency=1",
            "JobAcctGatherParams=OverMemoryKill",
            f"NodeName={self.host} CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP"])

    def _slurm(self) -> None:
        self._start("slurmctld", "slurmctld", "-D", "-i")
        self._start("slurmd", "slurmd", "-D")
        _wait("the SLURM node", lambda: self.run("sinfo", "-h", "-o", "%T", check=False)
              .stdout.strip() in {"idle", "mixed", "allocated"},
              logs=[self.root / "slurmctld.log", self.root / "slurmd.log"])

    def stop(self) -> None:
        """Stop every daemon this cluster started, newest first."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.procs.clear()
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()

    def sacct(self) -> list[dict[str, str]]:
        """Every job accounted since the cluster started (allocations only, no steps)."""
        fields = ["JobID", "JobName", "State", "ExitCode", "Partition", "Account", "ReqMem",
                  "AllocCPUS", "Comment"]
        out = self.run("sacct", "-X", "-P", "-n", "-a", "-S", "now-1days",
                       f"--format={','.join(fields)}").stdout
        return [dict(zip(fields, line.split("|"), strict=True))
                for line in out.splitlines() if line.strip()]
