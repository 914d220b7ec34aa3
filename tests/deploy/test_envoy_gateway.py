"""deploy/envoy-gateway, offline: the module the policy loads is the one the EnvoyProxy allows,
the cluster the patch adds is the one the filter calls, and the policy's plugin configuration
runs in real Envoy with the built dynamic module (`--mode validate`)."""

import os
import secrets
from pathlib import Path

import yaml

from envoy_proc import NATIVE_MODULE, render, use_build, validate
from procs import ROOT

DIR = ROOT / "deploy" / "envoy-gateway"


def load(name: str) -> dict:
    docs = list(yaml.safe_load_all((DIR / name).read_text()))
    assert len(docs) == 1, name
    return docs[0]


def test_the_policy_loads_the_allowed_module_and_calls_the_patched_cluster():
    proxy, policy, patch = load("envoyproxy.yaml"), load("extension-policy.yaml"), load("patch-policy.yaml")
    allowed = {m["name"]: m for m in proxy["spec"]["dynamicModules"]}
    module = policy["spec"]["dynamicModule"][0]
    assert module["name"] in allowed
    assert Path(allowed[module["name"]]["source"]["local"]["path"]).name == f"lib{NATIVE_MODULE}.so"
    cluster = patch["spec"]["jsonPatches"][0]["operation"]["value"]
    assert cluster["name"] == module["config"]["invoice_service"]["cluster"]
    env = {e["name"]: e for e in proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"]}
    for key in module["config"]["keys"]:
        assert "secretKeyRef" in env[key["env"]]["valueFrom"], "the master secret comes from a Secret"


def test_the_policy_configuration_runs_in_envoy_with_the_module(tmp_path):
    config = load("extension-policy.yaml")["spec"]["dynamicModule"][0]["config"]
    use_build("native")
    try:
        text = render(plugin_edit=lambda _: config)
    finally:
        use_build("wasm")
    done = validate(text, tmp_path / "envoy.yaml", {**os.environ, "L402_MASTER_KEY_1": secrets.token_hex(32)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
