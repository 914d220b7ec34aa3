"""versions.env is the one place the pinned tools and images are set. Scripts source it and
docker-compose.yml substitutes from it; the pins that cannot read it (Go's go.mod, the
Dockerfiles' defaults for a plain `docker build`, deploy/redis's image) must say the same, and
docker-compose must find it as `.env`."""

import os
import re

from procs import ROOT
from versions import VERSIONS_FILE, pinned

EXPECTED_KEYS = {"LND_VERSION", "BTCD_VERSION", "ENVOY_VERSION", "H2_VERSION", "KUSTOMIZE_VERSION",
                 "ISTIO_API_VERSION", "KUBERNETES_VALIDATE_VERSION", "BITCOIND_IMAGE", "HTTP_ECHO_IMAGE",
                 "REDIS_IMAGE", "RUST_IMAGE", "PLAYWRIGHT_VERSION", "ZXING_CPP_VERSION",
                 "PILLOW_VERSION", "PROMETHEUS_IMAGE", "GRAFANA_IMAGE"}


def test_the_versions_file_pins_every_tool_with_a_comment():
    assert set(pinned()) == EXPECTED_KEYS
    lines = VERSIONS_FILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            assert i > 0 and lines[i - 1].startswith("#"), f"{line}: say what it pins in a comment above it"


def test_the_lnd_build_module_requires_the_pinned_lnd():
    go_mod = (ROOT / "tests" / "regtest" / "lnd-build" / "go.mod").read_text()
    required = re.findall(r"^require github\.com/lightningnetwork/lnd (\S+)$", go_mod, re.M)
    assert required == [pinned()["LND_VERSION"]], (
        f"tests/regtest/lnd-build/go.mod requires lnd {required}, versions.env pins {pinned()['LND_VERSION']}: "
        "change both (then `go mod tidy` in a copy of that directory)")


def test_the_dockerfiles_default_to_the_pinned_rust_image():
    for name in ["wasm.Dockerfile", "invoicer.Dockerfile", "native.Dockerfile"]:
        text = (ROOT / "docker" / name).read_text()
        assert re.findall(r"^ARG RUST_IMAGE=(\S+)$", text, re.M) == [pinned()["RUST_IMAGE"]], name
        assert re.findall(r"^FROM (\S+) AS build$", text, re.M) == ["${RUST_IMAGE}"], name


def test_the_example_redis_manifest_runs_the_pinned_redis_image():
    """kustomize cannot read versions.env from deploy/redis, so the tag is written there too."""
    text = (ROOT / "deploy" / "redis" / "redis.yaml").read_text()
    assert re.findall(r"^\s+image: (\S+)$", text, re.M) == [pinned()["REDIS_IMAGE"]]


def test_docker_compose_reads_the_versions_file_as_dot_env():
    dot_env = ROOT / ".env"
    assert dot_env.is_symlink() and os.readlink(dot_env) == "versions.env"


def test_no_pinned_version_is_written_out_in_the_scripts_or_compose():
    """A version written into a script or docker-compose.yml would be a second place to change."""
    places = [*sorted((ROOT / "scripts").glob("*.sh")), ROOT / "docker-compose.yml"]
    for key, value in pinned().items():
        # The version itself (an image's tag), as a whole word: 1.40.0 but not 127.0.0.1.
        written = re.compile(rf"(?<![\w.])v?{re.escape(value.rpartition(':')[2].lstrip('v'))}(?![\w.])")
        for path in places:
            assert not written.search(path.read_text()), f"{path.relative_to(ROOT)} writes out {key} ({value})"
