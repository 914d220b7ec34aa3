"""docker-compose.yml cannot run here (no Docker daemon), so it is checked offline: docker-compose
validates and resolves it, the Envoy config it mounts passes `envoy --mode validate` with the
built .wasm, and the invoice-service config it mounts passes the service's own check."""

import os
import secrets
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from envoy_proc import render, validate
from procs import ROOT
from stack import check_config
from versions import pinned

COMPOSE = ROOT / "docker-compose.yml"
# The override that runs the filter as a native dynamic module.
NATIVE_OVERRIDE = ROOT / "docker-compose.native.yml"
# What `docker-compose up` refuses to start without (the header comment says how to make them).
SECRETS = {"L402_MASTER_KEY_1": secrets.token_hex(32), "L402_REDIS_PASSWORD": secrets.token_hex(24),
           "L402_ADMIN_TOKEN": secrets.token_hex(24)}


def compose(*args, env: dict, files=(COMPOSE,)):
    """docker-compose on the repository's files, with exactly `env` as its environment."""
    binary = shutil.which("docker-compose")
    if binary is None:
        raise RuntimeError("docker-compose is missing: scripts/setup.sh installs it (Debian package)")
    chosen = [arg for f in files for arg in ("-f", str(f))]
    return subprocess.run([binary, *chosen, *args], capture_output=True, text=True, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def resolved():
    done = compose("config", env={**os.environ, **SECRETS})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def host_path(service: dict, target: str) -> Path:
    for volume in service["volumes"]:
        # docker-compose 1.29 prints the short form, SOURCE:TARGET[:MODE].
        source, mounted = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
        if mounted == target:
            return Path(source)
    raise AssertionError(f"nothing is mounted at {target}")


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_secret(missing):
    env = {**{k: v for k, v in os.environ.items() if k not in SECRETS},
           **{k: v for k, v in SECRETS.items() if k != missing}}
    done = compose("config", env=env)
    assert done.returncode != 0
    assert missing in done.stderr and "openssl rand -hex" in done.stderr


def test_compose_has_the_whole_stack_with_pinned_images(resolved):
    """Every image and build is pinned, at the versions in versions.env."""
    services = resolved["services"]
    v = pinned()
    assert set(services) == {"bitcoind", "alice", "bob", "setup", "wasm", "envoy", "invoicer", "upstream", "redis",
                             "prometheus", "grafana"}
    assert services["alice"]["image"] == f"lightninglabs/lnd:{v['LND_VERSION']}"
    assert services["envoy"]["image"] == f"envoyproxy/envoy:v{v['ENVOY_VERSION']}"
    images = {name: service.get("image") for name, service in services.items()}
    assert images == {"bitcoind": v["BITCOIND_IMAGE"], "alice": services["alice"]["image"],
                      "bob": services["alice"]["image"], "setup": services["alice"]["image"],
                      "wasm": None, "envoy": services["envoy"]["image"], "invoicer": None,
                      "upstream": v["HTTP_ECHO_IMAGE"], "redis": v["REDIS_IMAGE"],
                      "prometheus": v["PROMETHEUS_IMAGE"], "grafana": v["GRAFANA_IMAGE"]}
    assert all(image is None or (":" in image and not image.endswith(":latest")) for image in images.values())
    for name in ["wasm", "invoicer"]:
        assert services[name]["build"]["args"] == {"RUST_IMAGE": v["RUST_IMAGE"]}
    for name in ["invoicer", "upstream"]:
        assert services[name]["network_mode"] == "service:envoy", "reached by Envoy on 127.0.0.1"
    # Envoy's admin and the invoice service's /metrics listen on 127.0.0.1 there only.
    assert services["prometheus"]["network_mode"] == "service:envoy", "scrapes them on 127.0.0.1"
    # The dashboard (tests/deploy/test_dashboard.py checks what it shows), on loopback only.
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000/tcp"]
    assert services["invoicer"]["read_only"] is True
    assert services["invoicer"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert "ports" not in services["invoicer"], "only Envoy may call the invoice service"


def test_the_published_port_reaches_envoys_listener_and_nothing_else_is_published(resolved):
    """Docker forwards a published port to the container's own address, never its loopback: the
    listener must bind every interface, and the admin (on loopback) cannot be published."""
    ports = resolved["services"]["envoy"]["ports"]
    assert ports == [{"published": 10000, "target": 10000}], ports
    for name in ["envoy.yaml", "envoy-native.yaml"]:
        config = yaml.safe_load((ROOT / "envoy" / name).read_text())
        (listener,) = config["static_resources"]["listeners"]
        assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 10000}, name
        assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1", name


def test_redis_persists_and_only_the_invoice_service_is_given_its_password(resolved):
    services = resolved["services"]
    redis, invoicer = services["redis"], services["invoicer"]
    command = redis["command"]
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2]))
    assert flags["--appendonly"] == "yes", "a restart must not forget the request counts"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--requirepass"] == SECRETS["L402_REDIS_PASSWORD"]
    assert host_path(redis, "/data") == Path("redis") and "redis" in resolved["volumes"]
    assert "ports" not in redis, "only the compose network reaches Redis"
    # Its own service on the compose network, reached by name like lnd "alice".
    assert "network_mode" not in redis
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    assert redis["environment"]["REDISCLI_AUTH"] == SECRETS["L402_REDIS_PASSWORD"]
    assert invoicer["depends_on"]["redis"]["condition"] == "service_healthy"
    env = invoicer["environment"]
    assert env["L402_REDIS_URL"] == f"redis://:{SECRETS['L402_REDIS_PASSWORD']}@redis:6379/0"
    assert env["L402_ADMIN_TOKEN"] == SECRETS["L402_ADMIN_TOKEN"]
    assert "L402_REDIS_PASSWORD" not in services["envoy"].get("environment", {})


def test_the_envoy_config_compose_mounts_validates_with_the_built_wasm(resolved, tmp_path):
    mounted = host_path(resolved["services"]["envoy"], "/etc/envoy/envoy.yaml")
    assert mounted == ROOT / "envoy" / "envoy.yaml"
    done = validate(render(mounted), tmp_path / "envoy.yaml",
                    {**os.environ, "L402_MASTER_KEY_1": secrets.token_hex(32)})
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_native_variant_mounts_the_module_and_its_config_which_validates(tmp_path):
    done = compose("config", env={**os.environ, **SECRETS}, files=(COMPOSE, NATIVE_OVERRIDE))
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    envoy, native = services["envoy"], services["native"]
    assert native["build"]["dockerfile"].endswith("docker/native.Dockerfile")
    assert native["build"]["args"] == {"RUST_IMAGE": pinned()["RUST_IMAGE"]}
    assert envoy["depends_on"]["native"]["condition"] == "service_completed_successfully"
    search_path = envoy["environment"]["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"]
    assert host_path(envoy, search_path) == Path("native")
    mounted = host_path(envoy, "/etc/envoy/envoy.yaml")
    assert mounted == ROOT / "envoy" / "envoy-native.yaml"
    done = validate(render(mounted), tmp_path / "envoy.yaml",
                    {**os.environ, "L402_MASTER_KEY_1": secrets.token_hex(32)})
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_invoicer_config_compose_mounts_passes_the_service_check(resolved, tmp_path, monkeypatch):
    invoicer = resolved["services"]["invoicer"]
    mounted = host_path(invoicer, "/etc/l402/invoicer.toml")
    config = tomllib.loads(mounted.read_text())
    # The store, the admin token and the shared challenge limits, from what compose sets.
    assert config["redis"]["url_env"] in invoicer["environment"] and "url" not in config["redis"]
    assert config["admin"]["token_env"] in invoicer["environment"]
    assert config["rate_limit"]["store"] == "redis"
    for name in [config["redis"]["url_env"], config["admin"]["token_env"]]:
        monkeypatch.setenv(name, invoicer["environment"][name])
    done = check_config(mounted.read_text(), "/shared/alice-tls.cert", "/shared/invoice.macaroon", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "weather" in done.stdout and "news" in done.stdout


def test_the_setup_script_is_valid_posix_shell():
    done = subprocess.run(["sh", "-n", str(ROOT / "docker" / "setup-regtest.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
