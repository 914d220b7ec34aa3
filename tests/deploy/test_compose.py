"""docker-compose.yml cannot run here (no Docker daemon), so it is checked offline: docker-compose
validates and resolves it, the Envoy config it mounts passes `envoy --mode validate` with the
built .wasm, and the invoice-service config it mounts passes the service's own check."""

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from envoy_proc import render, validate
from procs import ROOT
from stack import check_config
from versions import pinned

COMPOSE = ROOT / "docker-compose.yml"


def compose(*args, env: dict):
    """docker-compose on the repository's file, with exactly `env` as its environment."""
    binary = shutil.which("docker-compose")
    if binary is None:
        raise RuntimeError("docker-compose is missing: scripts/setup.sh installs it (Debian package)")
    return subprocess.run([binary, "-f", str(COMPOSE), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env)


@pytest.fixture(scope="module")
def resolved():
    done = compose("config", env={**os.environ, "L402_MASTER_KEY_1": secrets.token_hex(32)})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def host_path(service: dict, target: str) -> Path:
    for volume in service["volumes"]:
        # docker-compose 1.29 prints the short form, SOURCE:TARGET[:MODE].
        source, mounted = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
        if mounted == target:
            return Path(source)
    raise AssertionError(f"nothing is mounted at {target}")


def test_compose_refuses_to_start_without_a_master_key():
    env = {k: v for k, v in os.environ.items() if k != "L402_MASTER_KEY_1"}
    done = compose("config", env=env)
    assert done.returncode != 0
    assert "L402_MASTER_KEY_1" in done.stderr


def test_compose_has_the_whole_stack_with_pinned_images(resolved):
    """Every image and build is pinned, at the versions in versions.env."""
    services = resolved["services"]
    v = pinned()
    assert set(services) == {"bitcoind", "alice", "bob", "setup", "wasm", "envoy", "invoicer", "upstream"}
    assert services["alice"]["image"] == f"lightninglabs/lnd:{v['LND_VERSION']}"
    assert services["envoy"]["image"] == f"envoyproxy/envoy:v{v['ENVOY_VERSION']}"
    images = {name: service.get("image") for name, service in services.items()}
    assert images == {"bitcoind": v["BITCOIND_IMAGE"], "alice": services["alice"]["image"],
                      "bob": services["alice"]["image"], "setup": services["alice"]["image"],
                      "wasm": None, "envoy": services["envoy"]["image"], "invoicer": None,
                      "upstream": v["HTTP_ECHO_IMAGE"]}
    assert all(image is None or (":" in image and not image.endswith(":latest")) for image in images.values())
    for name in ["wasm", "invoicer"]:
        assert services[name]["build"]["args"] == {"RUST_IMAGE": v["RUST_IMAGE"]}
    for name in ["invoicer", "upstream"]:
        assert services[name]["network_mode"] == "service:envoy", "reached by Envoy on 127.0.0.1"
    assert services["invoicer"]["read_only"] is True
    assert services["invoicer"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert "ports" not in services["invoicer"], "only Envoy may call the invoice service"


def test_the_envoy_config_compose_mounts_validates_with_the_built_wasm(resolved, tmp_path):
    mounted = host_path(resolved["services"]["envoy"], "/etc/envoy/envoy.yaml")
    assert mounted == ROOT / "envoy" / "envoy.yaml"
    done = validate(render(mounted), tmp_path / "envoy.yaml",
                    {**os.environ, "L402_MASTER_KEY_1": secrets.token_hex(32)})
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_invoicer_config_compose_mounts_passes_the_service_check(resolved, tmp_path):
    mounted = host_path(resolved["services"]["invoicer"], "/etc/l402/invoicer.toml")
    done = check_config(mounted.read_text(), "/shared/alice-tls.cert", "/shared/invoice.macaroon", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "weather" in done.stdout and "news" in done.stdout


def test_the_setup_script_is_valid_posix_shell():
    done = subprocess.run(["sh", "-n", str(ROOT / "docker" / "setup-regtest.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
