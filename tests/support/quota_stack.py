"""Counted tokens across replicas: one Redis, several invoice-service replicas in front of the
regtest node alice, several Envoys (each with several workers) calling every replica, and one
upstream that records what reached it.

    with QuotaStack(workdir, net) as stack:
        stack.envoys[0].url, stack.envoys[1].url      # /weather/… (pay or mint), /single/… (N = 1)
        stack.redis                                   # redis_proc.RedisServer: stop(), start(), pause()
        stack.revoke(token_id)                        # POST /v1/revocations with the admin token
        stack.served(token_id)                        # requests with that token that reached the API
"""

import json
import secrets
from pathlib import Path

from envoy_proc import EnvoyProcess, cluster
from l402cli import l402
from procs import free_port
from redis_proc import RedisServer
from stack import Invoicer, invoicer_config, set_value
from upstream import Recorder, UpstreamHandler

# A service sold one request per payment, beside the shipped catalogue.
SINGLE_SERVICE = """
[[services]]
name = "single"
price_sat = 1
requests = 1
timeout_seconds = 3600
memo = "One request"
"""

STORE = """
[redis]
url_env = "L402_REDIS_URL"
connect_timeout_ms = 300
command_timeout_ms = 300

[admin]
token_env = "L402_ADMIN_TOKEN"
"""


class QuotaStack:
    def __init__(self, workdir: Path, net, replicas=2, envoys=2, concurrency=2, lease_size=10,
                 idle_return_ms=1000, per_client_burst=1000, shared_limits=False, sync_interval_ms=500):
        self.workdir = workdir
        self.master_key = secrets.token_hex(32)
        self.admin_token = secrets.token_hex(24)
        self.invoicers, self.envoys = [], []
        # Persistent, as a production store must be: counts survive the store's crash and restart.
        self.redis = RedisServer(workdir, persist=True)
        self.upstream = Recorder(free_port(), UpstreamHandler)
        try:
            env = {"L402_REDIS_URL": self.redis.url, "L402_ADMIN_TOKEN": self.admin_token}
            for i in range(replicas):
                config = invoicer_config(free_port(), net, per_client_burst, SINGLE_SERVICE + STORE)
                if shared_limits:
                    config = set_value(config, "per_client",
                                       f'{{ burst = {per_client_burst}, per_second = 0.01 }}\nstore = "redis"')
                self.invoicers.append(Invoicer(workdir, config, self.master_key, name=f"invoicer{i}", env=env))

            def plugin(p: dict):
                p["routes"].insert(1, {"match": {"prefix": "/single/"}, "service": "single"})
                p["quota"] = {"lease_size": lease_size, "idle_return_ms": idle_return_ms}
                p["revocations"] = {"sync_interval_ms": sync_interval_ms}

            def every_replica(config: dict):
                endpoints = cluster(config, "l402_invoicer")["load_assignment"]["endpoints"][0]["lb_endpoints"]
                for extra in self.invoicers[1:]:
                    endpoints.append({"endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": extra.port}}}})

            for i in range(envoys):
                self.envoys.append(EnvoyProcess(workdir, self.upstream.server_port, self.invoicers[0].port,
                                                {"L402_MASTER_KEY_1": self.master_key}, plugin, every_replica,
                                                name=f"envoy{i}", concurrency=concurrency))
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def counter(envoy, name: str) -> int:
        return envoy.counter(name)

    def revoke(self, token_id: str) -> dict:
        """`l402 revoke` against the first replica; what it printed."""
        done = l402("revoke", "--service", self.invoicers[0].url, token_id,
                    env={"L402_ADMIN_TOKEN": self.admin_token})
        return json.loads(done.stdout)

    def served(self, token_id: str) -> int:
        return sum(1 for r in list(self.upstream.requests) if r["headers"].get("x-l402-token-id") == token_id)

    def stats(self, name: str) -> int:
        """The sum of counter `name` over every Envoy."""
        return sum(self.counter(envoy, name) for envoy in self.envoys)

    def stop(self):
        for part in [*self.envoys, *self.invoicers, self.upstream, self.redis]:
            if part is not None:
                part.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
