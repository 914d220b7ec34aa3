"""End-to-end fixtures: one regtest Lightning network per test session (btcd, alice, bob and a
funded channel; ~15 s to start), the Go peer built from Aperture's own packages, and every test
with both builds of the filter (tests/support/builds.py)."""

import os
import subprocess

import pytest

from builds import filter_build, with_build  # noqa: F401 (fixtures: every test, both builds)
from procs import ROOT
from regtest import Regtest


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
