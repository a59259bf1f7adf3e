"""Real-SLURM tests: the `slurm` profile against slurmctld + slurmd on localhost.

The session fixture installs Debian's slurm-wlm + munge when missing and starts a one-node cluster
(tests/slurm/slurm_cluster.py). Every workflow runs through a profile derived from slurm/config.yaml
(tests/slurm/slurm_profile.py): same executor plugin, retries, resource expressions, GPU requests
(served by stand-in GRES GPUs) and warning signal; only partition, memory / CPU caps and the
status command differ.

Skipped, with the reason, where the machine cannot run SLURM (not root, no apt-get). On CI
(env CI set) that is a failure instead.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "slurm"))
import slurm_cluster as cluster  # noqa: E402
from slurm_profile import load_real_profile, write_test_profile  # noqa: E402

CAPPED_SNAKEMAKE = REPO / "tests" / "slurm" / "snakemake_capped_polling.py"

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# one tiny model on the offline demo data: the checkpoint/resume test and the study run share it
# the CI-size demo (configs/demo.yaml + configs/test.yaml) with one model: every stage still runs
# as a SLURM job, and the pretrain job is the one the signal / cancel test interrupts
ONE_MODEL = {"models": {"only": ["transformer"]}}

# long enough to be interrupted twice (the signal / scancel test: at step >= 15, then 15 steps
# after the first resume, so by step ~35; 80 leaves 45 steps of margin); the study run uses the
# same settings so that it reuses that model instead of retraining it
TRAIN = {"train": {"max_steps": int(os.environ.get("R2R_SLURM_TEST_STEPS", "80")), "checkpoint_every_steps": 10,
                   "log_every": 1, "compile": False, "precision": "fp32", "warmup_steps": 2,
                   "global_batch_tokens": 8192, "micro_batch_size": 16}}


@pytest.fixture(scope="session")
def slurm_node():
    reason = cluster.unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM tests, but: {reason}")
        pytest.skip(reason)
    node = cluster.start()
    yield node
    cluster.cancel_all()  # daemons stay up for the next session (start() reuses them)


def _env() -> dict:
    env = dict(os.environ)
    # jobs run `python -m recall2reason...` and `snakemake`: this interpreter's bin dir first
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.pop("SLURM_CONF", None)
    return env


def _profile(tmp: Path, node: dict, **kw) -> Path:
    return write_test_profile(tmp / "profile", partition=cluster.PARTITION, node=node,
                              logdir=tmp / "slurm_logs", **kw)


def _snakemake(args: list[str], cwd: Path, log: Path, timeout: float) -> subprocess.Popen:
    """`python -m snakemake ARGS`, with the executor plugin's status checks at most 2 s apart
    instead of its back-off of up to 180 s (tests/slurm/snakemake_capped_polling.py)."""
    f = open(log, "w")
    return subprocess.Popen([sys.executable, str(CAPPED_SNAKEMAKE), *args], cwd=cwd, env=_env(),
                            stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(proc: subprocess.Popen, log: Path, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        cluster.cancel_all()
        pytest.fail(f"snakemake did not finish in {timeout}s; log tail:\n{_tail(log)}")


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} missing)"


def _job_info(job_id: str) -> dict:
    out = subprocess.run(["scontrol", "show", "job", job_id, "-o"], capture_output=True, text=True).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


# --------------------------------------------------------------------------------------------


def test_profile_is_found_from_repo_root():
    """`snakemake --profile slurm` resolves slurm/config.yaml from the repository root."""
    prof = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    assert prof["executor"] == "slurm"
    for rule in ("pretrain", "sample", "probe"):
        res = prof["set-resources"][rule]
        assert res["gpu"] >= 1 and res["cpus_per_gpu"] >= 1
        assert "attempt" in str(res["runtime"])
    assert "--signal=TERM@" in prof["set-resources"]["pretrain"]["slurm_extra"]


FLAKY = r'''
rule flaky:
    output: "out.txt"
    resources: attempt_no=lambda wc, attempt: attempt
    shell:
        """
        echo "$SLURM_JOB_ID {resources.attempt_no}" >> attempts.txt
        if [ {resources.attempt_no} -lt 2 ]; then echo "failing on purpose, attempt {resources.attempt_no}" >&2; exit 1; fi
        echo ok > {output}
        """
'''


def test_failed_job_succeeds_on_retry(slurm_node, tmp_path):
    """A GPU job (resourced like `pretrain` by the real profile) fails once; the retry succeeds,
    as a new SLURM job with the longer attempt-2 time limit."""
    (tmp_path / "Snakefile").write_text(FLAKY)
    prof = _profile(tmp_path, slurm_node, alias_rules={"flaky": "pretrain"})
    log = tmp_path / "snakemake.log"
    proc = _snakemake(["--profile", str(prof)], tmp_path, log, 240)
    rc = _wait(proc, log, 240)
    assert rc == 0, _tail(log)
    assert (tmp_path / "out.txt").read_text().strip() == "ok"
    rows = [line.split() for line in (tmp_path / "attempts.txt").read_text().splitlines()]
    assert [r[1] for r in rows] == ["1", "2"], rows
    assert rows[0][0] != rows[1][0], "the retry must be a new SLURM job"
    # scontrol keeps finished jobs for MinJobAge: check what SLURM was asked for
    infos = [_job_info(r[0]) for r in rows]
    real = load_real_profile()["set-resources"]["pretrain"]
    for info in infos:
        assert info.get("TresPerJob") == f"gres:gpu:{real['gpu']}", info  # the profile's GPU request
        assert info.get("CpusPerTres", "").startswith("gres:gpu:"), info  # cpus_per_gpu
    # runtime grows with attempt: 24 h, then 48 h
    assert [i.get("TimeLimit") for i in infos] == ["1-00:00:00", "2-00:00:00"], infos
    # the SLURM log of every attempt is kept under the profile's log folder
    logs = sorted((tmp_path / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} >= {rows[0][0], rows[1][0]}, logs
    assert "failing on purpose" in (tmp_path / "slurm_logs" / "rule_flaky" / f"{rows[0][0]}.log").read_text()


# --------------------------------------------------------------------------------------------
# The study through SLURM: the CI-size demo with one model. Both tests use one results dir so that
# the study run reuses the resumed pretrain.


def _study_configfiles(tmp: Path, extra: dict) -> list[str]:
    over = tmp / "override.yaml"
    over.write_text(yaml.safe_dump({"results_dir": str(tmp / "results"), **ONE_MODEL, **extra}))
    return [str(REPO / "configs" / "demo.yaml"), str(REPO / "configs" / "test.yaml"), str(over)]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("study")


def _state_steps(state_dir: Path) -> int:
    """Last step logged in the resumable metrics (the pretrain module writes them as it goes)."""
    m = state_dir / "metrics.jsonl"
    if not m.exists():
        return -1
    steps = [json.loads(x)["step"] for x in m.read_text().splitlines() if x.strip().startswith("{")]
    return max(steps, default=-1)


def _read_log(path: Path) -> str:
    """A job's log as it is now: "" while absent (each attempt first moves the last one's log to
    <log>.previous, so the file is briefly missing between attempts)."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _running_pretrain_job(run_uuid_prefix: str = "r2r_") -> str | None:
    out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i|%k|%j"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        jid, comment, name = line.split("|", 2)
        if comment.startswith("rule_pretrain") and name.startswith(run_uuid_prefix):
            return jid
    return None


def test_pretrain_checkpoints_on_signal_and_cancel_and_resumes(slurm_node, study_dir):
    """The real pretrain module through the real profile. Attempt 1 gets the warning signal the
    profile asks for (SIGTERM to the job step, what `--signal=TERM@300` sends 5 min before the
    limit): it checkpoints and exits; Snakemake resubmits. Attempt 2 resumes, then is cancelled
    with plain `scancel` (as a preemption or user cancel); attempt 3 resumes from the last
    periodic checkpoint and finishes. Every resume continues, not restarts."""
    max_steps = TRAIN["train"]["max_steps"]
    cfgs = _study_configfiles(study_dir, TRAIN)
    prof = _profile(study_dir, slurm_node)
    results = study_dir / "results"
    log = study_dir / "pretrain.log"
    proc = _snakemake(["--profile", str(prof), "--until", "pretrain", "--configfile", *cfgs], REPO, log, 900)
    deadline = time.time() + 600

    def wait_for(pred, what):
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"snakemake ended (rc {proc.returncode}) while waiting for {what}:\n{_tail(log)}")
            v = pred()
            if v:
                return v
            time.sleep(0.2)
        _wait(proc, log, 1)
        pytest.fail(f"timed out waiting for {what}:\n{_tail(log)}")

    try:
        state_root = results / ".state" / "pretrain"
        # attempt 1: running and past its first periodic checkpoint
        job1 = wait_for(_running_pretrain_job, "the pretrain job to start")
        model_state = wait_for(lambda: next((d for d in state_root.glob("*") if (d / "metrics.jsonl").exists()), None),
                               "pretrain metrics")
        wait_for(lambda: _state_steps(model_state) >= 15, "pretrain step 15")
        subprocess.run(["scancel", "--signal=TERM", job1], check=True)  # steps only, not the batch shell
        # attempt 2: a new job that resumes
        job2 = wait_for(lambda: (j := _running_pretrain_job()) and j != job1 and j, "the resubmitted pretrain job")
        model_log = results / "logs" / "pretrain" / f"{model_state.name}.log"
        m = wait_for(lambda: re.search(r"resuming \S+ from \S+ at step (\d+)", _read_log(model_log)),
                     "attempt 2 to resume")
        resumed_at_1 = int(m.group(1))
        assert resumed_at_1 >= 15, f"attempt 2 should resume where the signal stopped attempt 1, not at {resumed_at_1}"
        wait_for(lambda: _state_steps(model_state) >= resumed_at_1 + 15, "attempt 2 to make progress")
        subprocess.run(["scancel", job2], check=True)  # whole job: batch shell included
        job3 = wait_for(lambda: (j := _running_pretrain_job()) and j not in (job1, job2) and j, "attempt 3")
        # (attempt 3 moves attempt 2's log to <log>.previous and writes its own)
        m = wait_for(lambda: next((x for x in re.finditer(r"resuming \S+ from \S+ at step (\d+)",
                                                          _read_log(model_log))
                                   if int(x.group(1)) > resumed_at_1), None), "attempt 3 to resume")
        resumed_at_2 = int(m.group(1))
        assert resumed_at_2 > resumed_at_1, (resumed_at_1, resumed_at_2)
        rc = _wait(proc, log, max(60, deadline - time.time()))
    finally:
        if proc.poll() is None:  # a failed assertion above: stop snakemake and its jobs
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                # a killed snakemake leaves the repo locked: free it for the next test
                subprocess.run([sys.executable, "-m", "snakemake", "--unlock", "--configfile", *cfgs],
                               cwd=REPO, env=_env(), capture_output=True)
            cluster.cancel_all()
    assert rc == 0, _tail(log)
    out = results / "pretrain" / model_state.name
    assert (out / "model.safetensors").stat().st_size > 0
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert steps == sorted(set(steps)) and steps[-1] == max_steps, "each step logged once, up to max_steps"
    assert _job_info(job1).get("JobState") == "FAILED" and _job_info(job2).get("JobState") == "CANCELLED"
    assert _job_info(job3).get("JobState") == "COMPLETED"


def test_study_runs_through_slurm(slurm_node, study_dir):
    """`snakemake --profile <derived from slurm> all` on the CI-size study: every job a SLURM job."""
    cfgs = _study_configfiles(study_dir, TRAIN)  # same pretrain config: the resumed model is reused
    prof = _profile(study_dir, slurm_node)
    log = study_dir / "study.log"
    proc = _snakemake(["--profile", str(prof), "all", "--configfile", *cfgs], REPO, log, 1200)
    rc = _wait(proc, log, 1200)
    assert rc == 0, _tail(log)
    text = log.read_text()
    assert "Finished jobid" in text or "steps (100%) done" in text, _tail(log)
    results = study_dir / "results"
    for rel in ("tables/table1.csv", "tables/table7.csv", "figures/fig2.pdf", "figures/fig3.pdf"):
        assert (results / rel).stat().st_size > 0, rel
