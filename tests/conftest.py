import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Our Triton kernels (decode attention, top-p sampling) are tested on CPU through Triton's
# interpreter, which reads TRITON_INTERPRET when triton is first imported: set it before any test
# module (or a torch.compile) imports triton. Never on a GPU machine: there the kernels run for real.
if "triton" not in sys.modules:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def snakemake(*args: str, cwd: Path = REPO, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the snakemake CLI of this Python environment (the one the tests run in)."""
    env = dict(os.environ)
    # rules call `python -m ...`: make sure `python` is this environment's interpreter
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} (the shared reference data) is not present")
    return SHARED


@pytest.fixture
def triton_device() -> str:
    """Where our Triton ops run in a test: "cuda" on a GPU machine (the compiled kernels), else
    "cpu" through Triton's interpreter (enabled above, before triton is first imported)."""
    pytest.importorskip("triton")
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    assert torch.cuda.is_available() or interpret, "TRITON_INTERPRET was not set before triton was imported"
    return "cpu" if interpret else "cuda"
