"""End-to-end fixtures: one regtest Lightning network per test session (btcd, alice, bob and a
funded channel; ~15 s to start), the binaries the tests run, and the Go peer built from
Aperture's own packages."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUPPORT = Path(__file__).resolve().parents[1] / "support"
sys.path.insert(0, str(SUPPORT))

from procs import L402, ROOT  # noqa: E402
from regtest import Regtest  # noqa: E402



@pytest.fixture(scope="session")
def net(tmp_path_factory):
    with Regtest(tmp_path_factory.mktemp("regtest"), log=lambda msg: print(f"[regtest] {msg}")) as network:
        yield network


@pytest.fixture(scope="session")
def aperture_peer(tmp_path_factory):
    """tests/interop/aperture-peer: reads challenges and builds credentials with Aperture's code."""
    out = tmp_path_factory.mktemp("go") / "aperture-peer"
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=ROOT / "tests" / "interop" / "aperture-peer",
                   check=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    return out


def l402(*args: str, check=True) -> subprocess.CompletedProcess:
    if not L402.exists():
        raise RuntimeError(f"{L402} is missing: run scripts/test.sh (it builds it)")
    return subprocess.run([str(L402), *args], capture_output=True, text=True, check=check)
