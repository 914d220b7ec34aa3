"""The operator's dashboard in docker-compose.yml: Grafana (docker/grafana) on Prometheus
(docker/prometheus/prometheus.yml). No Docker daemon runs here, so it is checked offline: every
metric a panel queries is one the code exports, read from the Rust source (the filter's
`labelled!` tables and `Counter::name`, the invoice service's registry), not from a list kept
here; each topic an operator needs has a panel; the provisioning finds the dashboard and the data
source; Prometheus scrapes the two targets where compose runs them. One test starts the real
Envoy with each filter build to see the names it prints."""

import json
import re
import secrets
import tomllib
from pathlib import Path

import pytest
import yaml

import envoy_proc
from procs import ROOT, free_port

COMPOSE = ROOT / "docker-compose.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "l402.json"
PROVISIONING = ROOT / "docker" / "grafana" / "provisioning"
PROMETHEUS = ROOT / "docker" / "prometheus" / "prometheus.yml"
FILTER_METRICS = ROOT / "crates" / "l402-filter" / "src" / "metrics.rs"
INVOICER_METRICS = ROOT / "crates" / "l402-invoicer" / "src" / "metrics.rs"
# Envoy 1.40's /stats/prometheus prints the .wasm's counters (`wasmcustom.` in /stats) under their
# own names and the dynamic module's (`dynamicmodulescustom.`) with this prefix, which the
# Prometheus config drops (test_envoy_prints_the_filter_counters_under_the_expected_names).
NATIVE_PROMETHEUS_PREFIX = "envoy_dynamicmodulescustom_"
# Series Prometheus makes itself for every target, not exported by the code.
PROMETHEUS_SERIES = {"up"}

# --- Reading the Rust source -------------------------------------------------------------------

RUST_STRING = r'"(?:[^"\\]|\\[\s\S])*"'


def rust_source(path: Path) -> str:
    """The file without its comments (string literals kept as they are)."""
    return re.sub(rf"{RUST_STRING}|//[^\n]*",
                  lambda m: m.group(0) if m.group(0).startswith('"') else "", path.read_text())


def braced(text: str, open_at: int) -> str:
    """What is between the brace at `open_at` and its match (braces in strings ignored)."""
    assert text[open_at] == "{"
    depth, i = 0, open_at
    while i < len(text):
        if text[i] == '"':
            i = re.compile(RUST_STRING).match(text, i).end()
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at + 1:i]
        i += 1
    raise AssertionError(f"unbalanced brace at {open_at}")


def label_tables() -> dict[str, list[str]]:
    """Each labelled enum of the crates -> its labels, in order. Two kinds of table: a macro
    invocation that declares the enum (`labelled! { pub enum Requests { Allowed => "allowed", ...
    } }`), and one whose `macro_rules!` declares it (`reasons! { Missing => "missing", ... }`,
    the enum `Reason` in the macro's body)."""
    tables, declared_by, undeclared = {}, {}, {}
    for path in sorted((ROOT / "crates").glob("*/src/**/*.rs")):
        text = rust_source(path)
        for m in re.finditer(r"macro_rules!\s+(\w+)\s*\{", text):
            enum = re.search(r"\benum\s+(\w+)", braced(text, m.end() - 1))
            if enum:
                declared_by[m.group(1)] = enum.group(1)
        for m in re.finditer(r"\b(\w+)!\s*\{", text):
            body = braced(text, m.end() - 1)
            labels = re.findall(r'\b\w+\s*=>\s*"([^"]*)"', body)
            enum = re.search(r"\benum\s+(\w+)\s*\{", body)
            if enum and labels:
                assert tables.get(enum.group(1), labels) == labels, f"two tables for {enum.group(1)}"
                tables[enum.group(1)] = labels
            elif labels:
                undeclared[m.group(1)] = labels
    for macro, labels in undeclared.items():
        if macro in declared_by:
            tables[declared_by[macro]] = labels
    return tables


def filter_counters() -> set[str]:
    """The filter's counter names as `Counter::name` makes them (l402_rejected_expired), one per
    label of the enum each `Counter` variant carries."""
    text = rust_source(FILTER_METRICS)
    counter = braced(text, re.search(r"\benum\s+Counter\s*\{", text).end() - 1)
    carried = dict(re.findall(r"\b(\w+)\((\w+)\)", counter))
    name_fn = braced(text, re.search(r"\bfn\s+name\s*\([^)]*\)[^{]*\{", text).end() - 1)
    prefixes = dict(re.findall(r'Self::(\w+)\(\w+\)\s*=>\s*format!\(\s*"(\w+)\{\}"', name_fn))
    assert set(prefixes) == set(carried), "every Counter variant is named by a format! of a label"
    tables = label_tables()
    names = set()
    for variant, enum in carried.items():
        assert enum in tables, f"no label table found for {enum} (Counter::{variant})"
        names |= {prefixes[variant] + label for label in tables[enum]}
    return names


# The exposition names of prometheus_client's metric types.
SUFFIXES = {"Counter": ["_total"], "Gauge": [""], "Histogram": ["_bucket", "_sum", "_count"]}


def invoicer_metrics() -> set[str]:
    """The invoice service's names: the registry's prefix, each registered name and its type's
    suffixes, the type read from the field the registration hands over."""
    text = rust_source(INVOICER_METRICS)
    prefix = re.search(r'Registry::with_prefix\(\s*"(\w+)"\s*\)', text).group(1)
    fields = braced(text, re.search(r"\bstruct\s+Metrics\s*\{", text).end() - 1)
    types = {name: re.findall(r"\w+", kind)[-1]
             for name, kind in re.findall(r"(\w+)\s*:\s*((?:Family<[^>]*>)|\w+)", fields)}
    registered = re.findall(rf'\.register\(\s*"(\w+)"\s*,\s*{RUST_STRING}\s*,\s*(\w+)\.clone\(\)', text)
    assert len(registered) == text.count(".register("), "a registration this test cannot read"
    names = set()
    for name, field in registered:
        assert types.get(field) in SUFFIXES, f"{name}: field {field} of unknown type {types.get(field)}"
        names |= {f"{prefix}_{name}{suffix}" for suffix in SUFFIXES[types[field]]}
    return names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return filter_counters() | invoicer_metrics()


def test_the_source_is_read_as_the_metrics_are_named(exported):
    """The readers above find what the code's own tests say it exports."""
    for name in ["l402_requests_allowed", "l402_rejected_preimage_mismatch", "l402_callout_errors_too_large",
                 "l402_quota_served_from_block", "l402_revocations_applied", "l402_challenges_issued_total",
                 "l402_invoice_amount_msat_total", "l402_lnd_request_duration_seconds_bucket",
                 "l402_rate_limited_total", "l402_connections_open", "l402_quota_leases_total"]:
        assert name in exported
    assert len([n for n in exported if n.startswith("l402_rejected_")]) >= 13

# --- Reading PromQL ----------------------------------------------------------------------------

AGGREGATIONS = {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
                "count_values", "group", "limitk", "limit_ratio"}
FUNCTIONS = {"abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max",
             "clamp_min", "count_over_time", "delta", "deriv", "exp", "floor", "histogram_avg",
             "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_sum", "idelta",
             "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log2", "log10",
             "max_over_time", "min_over_time", "predict_linear", "present_over_time", "quantile_over_time",
             "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "stddev_over_time",
             "stdvar_over_time", "sum_over_time", "time", "timestamp", "vector"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "atan2", "inf", "nan"}


def metric_names(expr: str) -> list[str]:
    """The metric names an expression selects. Strings, label matchers `{...}`, ranges `[...]`
    and label lists (`by (service)`, `on (le)`) are dropped first, since what they hold are
    label names, values and durations; of the identifiers left, one before `(` is a function
    (and must be one PromQL has), a keyword is skipped, and the rest are metric names."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = []
    for m in re.finditer(r"(?<![\w$.])[A-Za-z_:][\w:]*", text):
        word, rest = m.group(0), text[m.end():].lstrip()
        if rest.startswith("("):
            assert word in FUNCTIONS | AGGREGATIONS, f"{word}() is no PromQL function, in {expr!r}"
        elif word.lower() not in KEYWORDS:
            names.append(word)
    return names


@pytest.mark.parametrize("expr,names", [
    ("sum by (service) (rate(l402_challenges_issued_total[5m]))", ["l402_challenges_issued_total"]),
    ('sum(rate(x{service="a b", scope=~"c|d"}[$__rate_interval])) by (service) / 1000', ["x"]),
    ("histogram_quantile(0.99, sum by (le, operation) (rate(h_bucket[5m])))", ["h_bucket"]),
    ("a or on (job) b offset 1h", ["a", "b"]),
    ('up{job="envoy"} == bool 1', ["up"]),
    ("sum(increase(m:recorded[$__range])) / 1e3", ["m:recorded"]),
])
def test_metric_names_are_read_from_promql(expr, names):
    assert metric_names(expr) == names


def test_a_misspelt_function_is_caught():
    with pytest.raises(AssertionError, match="no PromQL function"):
        metric_names("sum(rat(x[5m]))")

# --- The dashboard -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict) -> list[dict]:
    """Every panel with queries, those inside collapsed rows too."""
    found = []
    for panel in dashboard["panels"]:
        found += [panel, *panel.get("panels", [])]
    return [p for p in found if p.get("type") != "row"]


def exprs(panel: dict) -> list[str]:
    return [target["expr"] for target in panel.get("targets", [])]


def test_every_metric_a_panel_queries_is_exported(dashboard, exported):
    used = set()
    for panel in panels(dashboard):
        assert exprs(panel), f"panel {panel['title']!r} has no query"
        for expr in exprs(panel):
            names = metric_names(expr)
            assert names, f"{panel['title']!r}: no metric in {expr!r}"
            for name in names:
                assert name in exported | PROMETHEUS_SERIES, (
                    f"panel {panel['title']!r} queries {name}, which no metrics.rs exports: {expr!r}")
            used |= set(names)
    assert len(used) > 10


def test_the_dashboard_is_a_provisionable_grafana_dashboard(dashboard):
    assert dashboard["uid"] and dashboard["title"] and dashboard.get("id") is None
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels(dashboard):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{panel['title']!r}: refIds are unique"


def panels_using(dashboard: dict, metric: str) -> list[dict]:
    return [p for p in panels(dashboard) if any(metric in metric_names(e) for e in exprs(p))]


# topic -> (a word of the panel's title, the metric it must query)
TOPICS = {
    "challenges issued": ("challenges", "l402_challenges_issued_total"),
    "paid requests": ("paid", "l402_requests_allowed"),
    "revenue": ("invoiced", "l402_invoice_amount_msat_total"),
    "callout errors": ("callout", "l402_callout_errors_timeout"),
    "lnd latency": ("lnd", "l402_lnd_request_duration_seconds_bucket"),
    "rate limiting": ("rate limit", "l402_rate_limited_total"),
    "quota leases": ("lease", "l402_quota_leases_total"),
    "redis errors": ("redis", "l402_redis_errors_total"),
    "rejections": ("reject", "l402_rejected_expired"),
}


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_every_topic_has_a_panel(dashboard, topic):
    word, metric = TOPICS[topic]
    assert [p for p in panels_using(dashboard, metric) if word in p["title"].lower()], (
        f"no panel titled with {word!r} queries {metric} ({topic})")


@pytest.mark.parametrize("family", ["l402_rejected_", "l402_callout_errors_", "l402_refused_"])
def test_a_breakdown_panel_shows_every_counter_of_its_family(dashboard, exported, family):
    """The filter has one counter per reason, not a label: a reason added in Rust must be added
    to its panel too, or it would never show."""
    members = {n for n in exported if n.startswith(family)}
    shown = [p for p in panels(dashboard)
             if {n for e in exprs(p) for n in metric_names(e)} & members]
    assert shown and all({n for e in exprs(p) for n in metric_names(e)} >= members for p in shown), (
        f"the panels of {family}* miss {members - {n for p in shown for e in exprs(p) for n in metric_names(e)}}")


def test_revenue_is_in_sats_and_called_invoiced(dashboard, exported):
    """The service counts what it invoices, not what is paid: the panel must not say revenue
    without saying so, unless a settled amount is exported to use instead."""
    assert not [n for n in exported if re.search(r"settled|paid_amount|revenue", n)], (
        "a paid amount is exported now: the revenue panels should use it")
    revenue = panels_using(dashboard, "l402_invoice_amount_msat_total")
    assert revenue
    for panel in revenue:
        assert "invoiced" in panel["title"].lower()
        for expr in exprs(panel):
            assert re.search(r"/\s*1000\b", expr), f"msat shown as sats: {expr!r}"


def test_the_lnd_latency_panel_shows_quantiles(dashboard):
    for panel in panels_using(dashboard, "l402_lnd_request_duration_seconds_bucket"):
        for expr in exprs(panel):
            assert re.search(r"histogram_quantile\(\s*0\.\d+\s*,.*\ble\b", expr), expr

# --- Provisioning and scraping -----------------------------------------------------------------


@pytest.fixture(scope="module")
def services() -> dict:
    # docker-compose.yml as written (test_compose.py checks that docker-compose resolves it).
    return yaml.safe_load(COMPOSE.read_text())["services"]


def mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (named volumes left out)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = (ROOT / source).resolve()
    return found


def test_grafana_provisions_the_data_source_and_the_dashboard(services, dashboard):
    grafana = services["grafana"]
    mounted = mounts(grafana)
    assert mounted["/etc/grafana/provisioning"] == PROVISIONING
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "l402.yml").read_text())["providers"]
    assert [p["type"] for p in providers] == ["file"]
    path = providers[0]["options"]["path"]
    assert mounted[path] == DASHBOARD.parent, f"the provider reads {path}, where the dashboards are not mounted"
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{path}/{DASHBOARD.name}"

    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [s["type"] for s in sources] == ["prometheus"]
    uid = sources[0]["uid"]
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], panel["title"]
    # Prometheus runs in Envoy's network namespace: the compose network calls it by that name.
    prometheus = services["prometheus"]
    owner = prometheus["network_mode"].removeprefix("service:")
    assert sources[0]["url"] == f"http://{owner}:9090"
    assert not any(a.startswith("--web.listen-address") for a in prometheus["command"]), "9090 is assumed"
    assert "network_mode" not in grafana, "Grafana is on the compose network, which reaches envoy:9090"
    assert grafana["ports"] == ["127.0.0.1:3000:3000"], "loopback only, like Envoy's admin"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


@pytest.fixture(scope="module")
def scrape_jobs(services) -> dict:
    prometheus = services["prometheus"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert mounts(prometheus)[config_flag.partition("=")[2]] == PROMETHEUS
    config = yaml.safe_load(PROMETHEUS.read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def targets(job: dict) -> list[str]:
    return [t for c in job["static_configs"] for t in c["targets"]]


def test_prometheus_scrapes_envoys_admin_in_its_network_namespace(services, scrape_jobs):
    """Envoy's admin listens on 127.0.0.1 in the namespace Prometheus joins (both filter builds'
    configs, since the native override mounts the other)."""
    assert services["prometheus"]["network_mode"] == "service:envoy"
    mounted = mounts(services["envoy"])["/etc/envoy/envoy.yaml"]
    for config in [mounted, ROOT / "envoy" / "envoy-native.yaml"]:
        admin = yaml.safe_load(config.read_text())["admin"]["address"]["socket_address"]
        assert targets(scrape_jobs["envoy"]) == [f"{admin['address']}:{admin['port_value']}"], config.name
    assert scrape_jobs["envoy"]["metrics_path"] == "/stats/prometheus"


def test_prometheus_scrapes_the_invoice_service_in_its_network_namespace(services, scrape_jobs):
    invoicer = services["invoicer"]
    assert invoicer["network_mode"] == services["prometheus"]["network_mode"]
    config = tomllib.loads(mounts(invoicer)["/etc/l402/invoicer.toml"].read_text())
    assert targets(scrape_jobs["invoicer"]) == [config["server"]["listen"]]
    assert scrape_jobs["invoicer"]["metrics_path"] == "/metrics"
    assert '.route("/metrics"' in rust_source(ROOT / "crates" / "l402-invoicer" / "src" / "http.rs")


def relabel(job: dict, name: str) -> str:
    """A metric name after the job's metric_relabel_configs that set __name__ (Prometheus anchors
    the regex and writes $1 for a group)."""
    for rule in job.get("metric_relabel_configs", []):
        assert rule.get("action", "replace") == "replace" and rule["source_labels"] == ["__name__"]
        if rule["target_label"] == "__name__" and (m := re.fullmatch(rule["regex"], name)):
            name = m.expand(re.sub(r"\$(\d+)", r"\\\1", rule["replacement"]))
    return name


def test_both_filter_builds_are_scraped_under_the_same_names(scrape_jobs):
    envoy = scrape_jobs["envoy"]
    for name in filter_counters():
        assert relabel(envoy, name) == name
        assert relabel(envoy, NATIVE_PROMETHEUS_PREFIX + name) == name
    assert relabel(envoy, "envoy_cluster_upstream_rq_total") == "envoy_cluster_upstream_rq_total"


@pytest.mark.parametrize("build", envoy_proc.BUILDS)
def test_envoy_prints_the_filter_counters_under_the_expected_names(build, tmp_path):
    """The real Envoy's /stats/prometheus, with each build of the filter: after the scrape's
    relabelling, its l402 counters are exactly the ones the source names."""
    before = envoy_proc.current_build()
    envoy_proc.use_build(build)
    try:
        with envoy_proc.EnvoyProcess(tmp_path, free_port(), free_port(),
                                     {"L402_MASTER_KEY_1": secrets.token_hex(32)}, first_read=False) as envoy:
            text = envoy.stats("/prometheus")
    finally:
        envoy_proc.use_build(before)
    job = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    envoy_job = next(j for j in job if j["job_name"] == "envoy")
    printed = {relabel(envoy_job, line.split("{")[0].split()[0]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert {n for n in printed if n.startswith("l402_")} == filter_counters()
