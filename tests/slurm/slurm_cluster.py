"""A real one-node SLURM cluster on localhost for the test suite.

Installs Debian's ``slurm-wlm`` pieces and ``munge`` with apt when they are missing (root only),
writes ``/etc/slurm/slurm.conf`` and ``/etc/slurm/gres.conf`` (the executor plugin's job step
drops ``SLURM_CONF``, so the configuration must sit at the default path), and starts ``munged``,
``slurmctld`` and ``slurmd`` (node ``localhost``, the machine's real CPUs and memory, and
count-only GPUs declared as GRES so ``--gpus`` requests are scheduled without a GPU).

Idempotent: a cluster that is already up with the same configuration is reused. Daemon state
and logs live in ``/var/lib/r2r-slurm-test``. Never touches a SLURM configuration it did not
write (a file without the marker line makes :func:`unavailable_reason` say so).

As a script::

    python tests/slurm/slurm_cluster.py start     # install if needed, start, wait until the node is idle
    python tests/slurm/slurm_cluster.py status
    python tests/slurm/slurm_cluster.py stop      # cancel the test partition's jobs, stop the daemons
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "recall2reason-test-cluster"
CONF_DIR = Path("/etc/slurm")
SLURM_CONF = CONF_DIR / "slurm.conf"
GRES_CONF = CONF_DIR / "gres.conf"
STATE = Path("/var/lib/r2r-slurm-test")
PARTITION = "r2rtest"
GPUS = 2  # count-only GRES: enough for one 2-GPU pretrain job or two 1-GPU jobs
APT_PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
NEEDED_BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "munged"]


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )


def _run(cmd: list[str], check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, timeout=timeout, **kw)


def unavailable_reason() -> str | None:
    """Why this machine cannot run the test cluster, or None when it can."""
    if sys.platform != "linux":
        return "SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return "SLURM test cluster needs root (to install slurm-wlm/munge and start the daemons)"
    missing = [b for b in NEEDED_BINARIES if not _which(b)]
    if missing and not shutil.which("apt-get"):
        return f"SLURM binaries missing ({', '.join(missing)}) and no apt-get to install them"
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text(errors="replace"):
        return f"{SLURM_CONF} exists and was not written by the test harness; refusing to overwrite it"
    return None


def install() -> None:
    """apt-get install the SLURM daemons, client and munge when any binary is missing."""
    if all(_which(b) for b in NEEDED_BINARIES):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]
    r = subprocess.run(cmd, env=env, text=True, capture_output=True, timeout=900)
    if r.returncode != 0:  # stale or missing package lists: update once and retry
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True, timeout=600)
        r = subprocess.run(cmd, env=env, text=True, capture_output=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"apt-get install {' '.join(APT_PACKAGES)} failed:\n{r.stdout}\n{r.stderr}")
    missing = [b for b in NEEDED_BINARIES if not _which(b)]
    if missing:
        raise RuntimeError(f"after apt-get install, still missing: {missing}")


def _hardware() -> dict[str, str]:
    """The node's real layout from ``slurmd -C`` (CPUs, sockets, cores, threads, memory)."""
    out = _run([_which("slurmd"), "-C"]).stdout.split("\n")[0]
    hw = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
    return hw


def render_configs() -> tuple[str, str]:
    hw = _hardware()
    # Leave some memory to the OS; SLURM rejects jobs asking for more than RealMemory.
    mem_mb = max(1024, int(int(hw["RealMemory"]) * 0.85))
    layout = " ".join(
        f"{k}={hw[k]}" for k in ("Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore") if k in hw
    )
    subst = {"@STATE@": str(STATE), "@CPUS@": f"{hw['CPUs']} {layout}", "@MEM_MB@": str(mem_mb),
             "@GPUS@": str(GPUS), "@LASTGPU@": str(GPUS - 1), "@PARTITION@": PARTITION}
    texts = []
    for name in ("slurm.conf.in", "gres.conf.in"):
        text = (HERE / name).read_text()
        for k, v in subst.items():
            text = text.replace(k, v)
        texts.append(text)
    return texts[0], texts[1]


def node_resources() -> dict[str, int]:
    """CPUs and memory (MB) of the test node as SLURM sees them."""
    out = _run(["scontrol", "show", "node", "localhost", "-o"]).stdout
    kv = dict(x.split("=", 1) for x in out.split() if "=" in x)
    return {"cpus": int(kv["CPUTot"]), "mem_mb": int(kv["RealMemory"]), "gpus": GPUS}


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def _munge_ok() -> bool:
    munge, unmunge = _which("munge"), _which("unmunge")
    if not (munge and unmunge):
        return False
    r = subprocess.run(f"{munge} -n | {unmunge}", shell=True, capture_output=True, timeout=20)
    return r.returncode == 0


def _start_munge() -> None:
    if _munge_ok():
        return
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        mungekey = _which("mungekey")
        if mungekey:
            _run([mungekey, "--create", "--keyfile", str(key)])
        else:
            key.write_bytes(os.urandom(1024))
    try:
        import pwd
        pw = pwd.getpwnam("munge")
        for p in (run_dir, key, Path("/var/lib/munge"), Path("/var/log/munge")):
            if p.exists():
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(key, 0o400)
        _run(["runuser", "-u", "munge", "--", _which("munged")])
    except KeyError:  # no munge user: run it as root
        os.chmod(key, 0o400)
        _run([_which("munged"), "--force"])
    for _ in range(50):
        if _munge_ok():
            return
        time.sleep(0.2)
    raise RuntimeError("munged did not come up (munge -n | unmunge fails)")


def _make_fake_gpu(path: Path) -> None:
    """A character device like /dev/null (slurmd wants one per GPU); a plain file if mknod is denied."""
    if path.exists() or path.is_symlink():
        path.unlink()
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError:
        path.touch()


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} unreadable)"


def _node_state() -> str:
    r = _run(["sinfo", "-h", "-n", "localhost", "-o", "%T"], check=False, timeout=20)
    return r.stdout.strip() if r.returncode == 0 else ""


def _stop_daemons() -> None:
    for name in ("slurmd", "slurmctld"):
        pidfile = STATE / f"{name}.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)


def start(timeout: float = 120) -> dict[str, int]:
    """Install when needed, (re)start the daemons if not running with this config, wait until idle."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    install()
    _start_munge()
    slurm_conf, gres_conf = render_configs()
    CONF_DIR.mkdir(parents=True, exist_ok=True)
    same = (SLURM_CONF.exists() and SLURM_CONF.read_text() == slurm_conf
            and GRES_CONF.exists() and GRES_CONF.read_text() == gres_conf)
    running = _pid_alive(STATE / "slurmctld.pid") and _pid_alive(STATE / "slurmd.pid")
    if not (same and running):
        _stop_daemons()
        for sub in ("ctld", "d"):
            (STATE / sub).mkdir(parents=True, exist_ok=True)
        for i in range(GPUS):
            _make_fake_gpu(STATE / f"fakegpu{i}")
        SLURM_CONF.write_text(slurm_conf)
        GRES_CONF.write_text(gres_conf)
        # -c: clear saved state (jobs of a previous configuration); -i: ignore stale state errors
        _run([_which("slurmctld"), "-c", "-i"])
        _run([_which("slurmd"), "-N", "localhost"])
    deadline = time.time() + timeout
    state = ""
    while time.time() < deadline:
        state = _node_state()
        if state in ("idle", "mixed", "allocated"):
            return node_resources()
        if state.startswith("inval"):
            break
        if state.startswith(("drain", "down")) or state.endswith(("drain", "down")):
            _run(["scontrol", "update", "NodeName=localhost", "State=RESUME"], check=False)
        time.sleep(1)
    raise RuntimeError(
        f"SLURM node not ready (state {state!r})\n--- slurmctld.log\n"
        f"{_tail(STATE / 'slurmctld.log')}\n--- slurmd.log\n{_tail(STATE / 'slurmd.log')}"
    )


def cancel_all() -> None:
    """Cancel every job in the test partition (the cluster exists only for the tests)."""
    _run(["scancel", "-p", PARTITION], check=False)


def stop() -> None:
    cancel_all()
    _stop_daemons()


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "status"
    if cmd == "start":
        print(start())
    elif cmd == "stop":
        stop()
    elif cmd == "status":
        reason = unavailable_reason()
        print(reason or f"node state: {_node_state() or 'not running'}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
