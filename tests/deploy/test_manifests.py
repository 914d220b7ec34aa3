"""The Istio/Kubernetes manifests in deploy/: rendered by kustomize, validated against the real
schemas (Kubernetes' from kubernetes-validate, Istio's CRD OpenAPI schemas from the istio.io/api Go
module), their pluginConfig run in real Envoy, and the OCI packaging checked."""

import copy
import gzip
import hashlib
import io
import json
import os
import secrets
import subprocess
import tarfile
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from client import challenge, request
from envoy_proc import WASM, cluster, render, validate as envoy_validate
from harness import MASTER_KEY, Envoy, mint
from oci_layout import LAYER, package
from procs import CACHE, ROOT, require
from stack import check_config
from versions import pinned, version

DEPLOY = ROOT / "deploy"
KUSTOMIZE = CACHE / "bin" / "kustomize"
ISTIO_API = f"istio.io/api@{version('ISTIO_API_VERSION')}"
KUBERNETES = "1.33.0"
VARIANTS = ["sidecar", "gateway"]
PLACEHOLDERS = ["APP_NAMESPACE", "APP_NAME", "APP_SERVICE_ACCOUNT", "GATEWAY_NAMESPACE", "GATEWAY_NAME",
                "GATEWAY_SERVICE_ACCOUNT", "WASM_URL", "INVOICER_IMAGE"]


def values() -> dict:
    lines = (DEPLOY / "values" / "values.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def kustomize(directory: Path) -> list:
    binary = require(KUSTOMIZE, "scripts/setup.sh installs kustomize into the cache")
    out = subprocess.run([str(binary), "build", str(directory)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return list(yaml.safe_load_all(out.stdout))


@pytest.fixture(scope="module", params=VARIANTS)
def rendered(request):
    return request.param, kustomize(DEPLOY / request.param)


@pytest.fixture(scope="module")
def redis_example():
    return kustomize(DEPLOY / "redis")


@pytest.fixture(scope="module")
def istio_schemas():
    """Every Istio CRD's openAPIV3Schema by (group, kind, version), made strict: unknown fields are
    errors, as `kubectl apply --validate=strict` makes them."""
    info = json.loads(subprocess.run(["go", "mod", "download", "-json", ISTIO_API], capture_output=True,
                                     text=True, check=True, env={**os.environ, "GOFLAGS": "-modcacherw"}).stdout)
    crds = Path(info["Dir"]) / "kubernetes" / "customresourcedefinitions.gen.yaml"
    schemas = {}
    for crd in yaml.safe_load_all(crds.read_text()):
        if not crd:
            continue
        for version in crd["spec"]["versions"]:
            key = (crd["spec"]["group"], crd["spec"]["names"]["kind"], version["name"])
            schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def strict(schema):
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def schema_key(doc) -> tuple:
    group, _, api_version = doc["apiVersion"].rpartition("/")
    return group, doc["kind"], api_version


def validate(doc, istio_schemas):
    key = schema_key(doc)
    if key in istio_schemas:
        body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
        jsonschema.validate(body, istio_schemas[key])
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_every_manifest_is_valid_against_the_real_schemas(rendered, istio_schemas):
    variant, docs = rendered
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment", "WasmPlugin",
                            "DestinationRule", "NetworkPolicy", "AuthorizationPolicy"]), variant
    for doc in docs:
        validate(doc, istio_schemas)


def test_a_wrong_field_would_be_caught(istio_schemas):
    plugin = yaml.safe_load((DEPLOY / "sidecar" / "wasmplugin.yaml").read_text())
    # Judged by Istio's own schema, not by a lookup that found none.
    assert schema_key(plugin) in istio_schemas
    plugin["spec"]["failStrategy"] = "FAIL_SOMETIMES"
    with pytest.raises(jsonschema.ValidationError, match="FAIL_SOMETIMES"):
        validate(plugin, istio_schemas)
    plugin["spec"]["failStrategy"] = "FAIL_CLOSE"
    plugin["spec"]["phaze"] = "AUTHZ"
    with pytest.raises(jsonschema.ValidationError, match="phaze"):
        validate(plugin, istio_schemas)
    service = yaml.safe_load((DEPLOY / "base" / "service.yaml").read_text())
    service["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(service, istio_schemas)
    service = yaml.safe_load((DEPLOY / "base" / "service.yaml").read_text())
    service["spec"]["selectr"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(service, istio_schemas)


def test_values_reach_every_manifest(rendered):
    variant, docs = rendered
    text = yaml.safe_dump_all(docs)
    for placeholder in PLACEHOLDERS:
        assert placeholder not in text, f"{placeholder} left in the {variant} manifests"
    assert "l402-values" not in text, "the values ConfigMap is local, never applied"
    v = values()
    by_kind = {d["kind"]: d for d in docs}
    plugin = by_kind["WasmPlugin"]
    assert plugin["spec"]["url"] == v["WASM_URL"] and "@sha256:" in plugin["spec"]["url"]
    assert by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == v["INVOICER_IMAGE"]
    principals = by_kind["AuthorizationPolicy"]["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert principals == [f"cluster.local/ns/{v['APP_NAMESPACE']}/sa/{v['APP_SERVICE_ACCOUNT']}",
                          f"cluster.local/ns/{v['GATEWAY_NAMESPACE']}/sa/{v['GATEWAY_SERVICE_ACCOUNT']}"]
    if variant == "sidecar":
        assert plugin["metadata"]["namespace"] == v["APP_NAMESPACE"]
        assert plugin["spec"]["selector"]["matchLabels"] == {"app": v["APP_NAME"]}
    else:
        assert plugin["metadata"]["namespace"] == v["GATEWAY_NAMESPACE"]
        assert plugin["spec"]["targetRefs"][0]["name"] == v["GATEWAY_NAME"]


def test_plugin_fails_closed_and_takes_secrets_from_the_host(rendered):
    _, docs = rendered
    spec = next(d for d in docs if d["kind"] == "WasmPlugin")["spec"]
    assert spec["failStrategy"] == "FAIL_CLOSE"
    assert spec["phase"] == "AUTHZ" and isinstance(spec["priority"], int)
    key_vars = {k["env"] for k in spec["pluginConfig"]["keys"]}
    assert {e["name"] for e in spec["vmConfig"]["env"]} == key_vars
    assert all(e["valueFrom"] == "HOST" and "value" not in e for e in spec["vmConfig"]["env"])
    patch = yaml.safe_load((DEPLOY / "proxy-env-patch.yaml").read_text())
    proxy = patch["spec"]["template"]["spec"]["containers"][0]
    assert proxy["name"] == "istio-proxy"
    assert {e["name"] for e in proxy["env"]} == key_vars
    assert all("secretKeyRef" in e["valueFrom"] for e in proxy["env"])


def test_the_proxy_env_patch_gives_a_valid_deployment():
    patch = yaml.safe_load((DEPLOY / "proxy-env-patch.yaml").read_text())
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weather-api"},
                  "spec": {"selector": {"matchLabels": {"app": "weather-api"}},
                           "template": {"metadata": {"labels": {"app": "weather-api"}},
                                        "spec": {"containers": [{"name": "api", "image": "example/api:1"}]}}}}
    deployment["spec"]["template"]["spec"]["containers"] += patch["spec"]["template"]["spec"]["containers"]
    kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_the_invoicer_is_locked_down(rendered):
    _, docs = rendered
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"] and container["resources"]["requests"]
    rule = next(d for d in docs if d["kind"] == "DestinationRule")["spec"]
    assert rule["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"


def test_the_invoicer_config_in_the_configmap_passes_the_service_check(rendered, tmp_path, monkeypatch):
    _, docs = rendered
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["invoicer.toml"]
    # The values the Secrets l402-redis and l402-admin hold at run time.
    monkeypatch.setenv("L402_REDIS_URL", "rediss://l402:pass@my-redis:6380/0")
    monkeypatch.setenv("L402_ADMIN_TOKEN", secrets.token_hex(24))
    done = check_config(config, "/etc/l402/lnd/tls.cert", "/etc/l402/lnd/invoice.macaroon", tmp_path)
    assert done.returncode == 0, done.stderr


def test_every_variable_the_invoicer_config_names_comes_from_a_secret(rendered):
    """The store's URL (credentials included) and the admin token are Secrets, required: the
    service refuses to start without a variable its config names."""
    _, docs = rendered
    config = tomllib.loads(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["invoicer.toml"])
    assert "url" not in config["redis"], "a URL in the ConfigMap could carry a password"
    named = {k["env"] for k in config["keys"]} | {config["redis"]["url_env"], config["admin"]["token_env"]}
    container = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert set(refs) == named
    assert not any(ref.get("optional") for ref in refs.values())
    assert refs["L402_REDIS_URL"] == {"name": "l402-redis", "key": "url"}
    assert refs["L402_ADMIN_TOKEN"] == {"name": "l402-admin", "key": "token"}


def test_the_proxies_may_make_the_filter_calls_and_nothing_else(rendered):
    _, docs = rendered
    rules = next(d for d in docs if d["kind"] == "AuthorizationPolicy")["spec"]["rules"]
    assert len(rules) == 1
    allowed = {(method, path) for to in rules[0]["to"] for method in to["operation"]["methods"]
               for path in to["operation"]["paths"]}
    assert allowed == {("POST", "/v1/challenges"), ("POST", "/v1/quota/leases"), ("POST", "/v1/quota/returns"),
                       ("GET", "/v1/revocations")}, "revoking (POST /v1/revocations) is for the admin only"
    assert all(to["operation"]["ports"] == ["8402"] for to in rules[0]["to"])


def test_the_example_redis_is_valid_persistent_and_reached_only_by_the_invoicer(redis_example, istio_schemas):
    by_kind = {d["kind"]: d for d in redis_example}
    assert sorted(by_kind) == ["AuthorizationPolicy", "NetworkPolicy", "Service", "StatefulSet"]
    for doc in redis_example:
        assert doc["metadata"]["namespace"] == "l402-system"
        validate(doc, istio_schemas)
    pod = by_kind["StatefulSet"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == pinned()["REDIS_IMAGE"]
    flags = dict(zip(container["args"][::2], container["args"][1::2]))
    assert flags["--appendonly"] == "yes" and flags["--maxmemory-policy"] == "noeviction"
    assert flags["--requirepass"] == "$(REDISCLI_AUTH)"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env == {"REDISCLI_AUTH": {"name": "l402-redis", "key": "password"}}
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/data"]
    assert by_kind["StatefulSet"]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # The address deploy/base/kustomization.yaml tells users to put in the l402-redis Secret.
    service = by_kind["Service"]
    assert service["metadata"]["name"] == "l402-redis" and service["spec"]["ports"][0]["port"] == 6379
    assert "l402-redis.l402-system.svc.cluster.local:6379" in (DEPLOY / "base" / "kustomization.yaml").read_text()
    base = kustomize(DEPLOY / "base")
    invoicer = next(d for d in base if d["kind"] == "Deployment")
    account = f"cluster.local/ns/{invoicer['metadata']['namespace']}/sa/{invoicer['spec']['template']['spec']['serviceAccountName']}"
    rule = by_kind["AuthorizationPolicy"]["spec"]["rules"][0]
    assert rule["from"][0]["source"]["principals"] == [account]
    peers = by_kind["NetworkPolicy"]["spec"]["ingress"][0]["from"]
    assert peers == [{"podSelector": {"matchLabels": invoicer["spec"]["template"]["metadata"]["labels"]}}]


def istio_cluster_edit(plugin_config: dict):
    """Edits that render envoy/envoy.yaml with the manifest's pluginConfig, and name the invoice
    cluster the way Istio does (outbound|PORT||HOST), as the pluginConfig expects."""
    name = plugin_config["invoice_service"]["cluster"]

    def plugin_edit(_shipped):
        return copy.deepcopy(plugin_config)

    def config_edit(config):
        invoicer = cluster(config, "l402_invoicer")
        invoicer["name"] = invoicer["load_assignment"]["cluster_name"] = name

    return plugin_edit, config_edit


def test_the_plugin_config_runs_in_real_envoy(rendered, tmp_path):
    _, docs = rendered
    plugin_config = next(d for d in docs if d["kind"] == "WasmPlugin")["spec"]["pluginConfig"]
    plugin_edit, config_edit = istio_cluster_edit(plugin_config)

    text = render(plugin_edit=plugin_edit, config_edit=config_edit)
    done = envoy_validate(text, tmp_path / "validate.yaml", {**os.environ, "L402_MASTER_KEY_1": MASTER_KEY})
    assert done.returncode == 0, done.stdout + done.stderr

    with Envoy(tmp_path, plugin_edit, config_edit) as envoy:
        unpaid = request(envoy.url, "/weather/today")
        assert unpaid.status == 402
        challenge(unpaid)
        assert envoy.invoicer.requests[-1]["service"] == "weather"
        macaroon, preimage, _ = mint("weather")
        paid = request(envoy.url, "/weather/today", {"Authorization": f"L402 {macaroon}:{preimage}"})
        assert paid.status == 200
        assert request(envoy.url, "/healthz").status == 200
        assert [r["path"] for r in envoy.upstream.requests] == ["/weather/today", "/healthz"]


def test_oci_packaging_is_single_layer_compat_and_reproducible(tmp_path):
    wasm = require(WASM, "run scripts/build-wasm.sh")
    first = package(wasm, tmp_path / "a")
    assert package(wasm, tmp_path / "b") == first, "the digest depends on the .wasm only"
    blobs = tmp_path / "a" / "blobs" / "sha256"
    index = json.loads((tmp_path / "a" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == first
    manifest = json.loads((blobs / first.split(":")[1]).read_bytes())
    assert len(manifest["layers"]) == 1 and manifest["layers"][0]["mediaType"] == LAYER
    layer = (blobs / manifest["layers"][0]["digest"].split(":")[1]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        assert tar.getnames() == ["plugin.wasm"]
        inside = tar.extractfile("plugin.wasm").read()
    assert hashlib.sha256(inside).hexdigest() == hashlib.sha256(wasm.read_bytes()).hexdigest()
