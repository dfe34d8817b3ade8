"""The gRPC contracts pass buf lint (STANDARD plus comments on everything)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_protos_pass_buf_lint():
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(buf).exists():
        pytest.fail("buf is not installed; scripts/setup.sh installs buf-bin")

    lint = subprocess.run([buf, "lint"], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert lint.returncode == 0, lint.stdout + lint.stderr
