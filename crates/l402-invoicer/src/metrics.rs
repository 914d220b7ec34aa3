//! Prometheus metrics, served on `GET /metrics`.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    challenges: Family<Labels, Counter>,
    amount_msat: Family<Labels, Counter>,
    lnd_latency: Family<Labels, Histogram>,
    lnd_errors: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
    responses: Family<Labels, Counter>,
    unknown_clients: Counter,
    connections_open: Gauge,
    connections_refused: Counter,
    connections_evicted: Counter,
    header_timeouts: Counter,
    redis_latency: Family<Labels, Histogram>,
    redis_errors: Family<Labels, Counter>,
    quota_leases: Family<Labels, Counter>,
    quota_units_leased: Counter,
    quota_units_returned: Counter,
    revocations: Counter,
}

fn redis_histogram() -> Histogram {
    // 0.1 ms … ~1.6 s: a store on the same network answers in well under a millisecond.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s: regtest answers in milliseconds, a struggling mainnet node in seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("l402");
        let challenges = Family::default();
        registry.register(
            "challenges_issued",
            "Challenges issued (invoice created and macaroon minted), by service",
            challenges.clone(),
        );
        let amount_msat = Family::default();
        registry.register(
            "invoice_amount_msat",
            "Sum of the amounts of issued invoices in millisatoshis, by service",
            amount_msat.clone(),
        );
        let lnd_latency = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "lnd_request_duration_seconds",
            "Time lnd took to answer, retries included, by operation",
            lnd_latency.clone(),
        );
        let lnd_errors = Family::default();
        registry.register(
            "lnd_errors",
            "Failed lnd calls by kind (unreachable, timeout, tls, auth, rejected, bad_response)",
            lnd_errors.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "Challenges refused by the rate limiter, by scope (client, global)",
            rate_limited.clone(),
        );
        let responses = Family::default();
        registry.register(
            "challenge_responses",
            "Answers of POST /v1/challenges by HTTP status",
            responses.clone(),
        );
        let unknown_clients = Counter::default();
        registry.register(
            "challenges_without_client_address",
            "Challenge requests whose client address the filter could not tell (they share the \
             unknown_client bucket)",
            unknown_clients.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed on arrival: at server.max_connections with every connection busy",
            connections_refused.clone(),
        );
        let connections_evicted = Counter::default();
        registry.register(
            "connections_evicted",
            "Idle connections closed to make room for a new one at server.max_connections",
            connections_evicted.clone(),
        );
        let header_timeouts = Counter::default();
        registry.register(
            "connection_header_timeouts",
            "Connections closed for not sending a complete request head within \
             server.header_read_timeout_ms (idle keep-alive connections included)",
            header_timeouts.clone(),
        );
        let redis_latency =
            Family::<Labels, Histogram>::new_with_constructor(redis_histogram as fn() -> Histogram);
        registry.register(
            "redis_request_duration_seconds",
            "Time the shared store took to run a script, by operation (lease, give_back, \
             revoke, revocations, rate_limit)",
            redis_latency.clone(),
        );
        let redis_errors = Family::default();
        registry.register(
            "redis_errors",
            "Failed shared-store calls by operation and kind (timeout, unreachable, auth, error)",
            redis_errors.clone(),
        );
        let quota_leases = Family::default();
        registry.register(
            "quota_leases",
            "Lease requests for counted tokens by result (granted, exhausted, held_elsewhere)",
            quota_leases.clone(),
        );
        let quota_units_leased = Counter::default();
        registry.register(
            "quota_units_leased",
            "Requests of counted tokens leased to proxies (each counts as served unless given back)",
            quota_units_leased.clone(),
        );
        let quota_units_returned = Counter::default();
        registry.register(
            "quota_units_returned",
            "Leased requests given back unserved by proxies",
            quota_units_returned.clone(),
        );
        let revocations = Counter::default();
        registry.register(
            "revocations_recorded",
            "Token ids recorded as revoked in the shared store",
            revocations.clone(),
        );
        Self {
            redis_latency,
            redis_errors,
            quota_leases,
            quota_units_leased,
            quota_units_returned,
            revocations,
            registry,
            challenges,
            amount_msat,
            lnd_latency,
            lnd_errors,
            rate_limited,
            responses,
            unknown_clients,
            connections_open,
            connections_refused,
            connections_evicted,
            header_timeouts,
        }
    }
}

impl Metrics {
    pub fn challenge_issued(&self, service: &str, amount_msat: u64) {
        let labels = vec![("service", service.to_string())];
        self.challenges.get_or_create(&labels).inc();
        self.amount_msat.get_or_create(&labels).inc_by(amount_msat);
    }

    pub fn lnd_call(&self, operation: &'static str, took: Duration) {
        self.lnd_latency
            .get_or_create(&vec![("operation", operation.to_string())])
            .observe(took.as_secs_f64());
    }

    pub fn lnd_error(&self, kind: &'static str) {
        self.lnd_errors
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc();
    }

    pub fn rate_limited(&self, scope: &'static str) {
        self.rate_limited
            .get_or_create(&vec![("scope", scope.to_string())])
            .inc();
    }

    pub fn challenge_response(&self, status: u16) {
        self.responses
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
    }

    pub fn unknown_client(&self) {
        self.unknown_clients.inc();
    }

    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub fn connection_evicted(&self) {
        self.connections_evicted.inc();
    }

    pub fn connection_header_timeout(&self) {
        self.header_timeouts.inc();
    }

    pub fn redis_call(&self, operation: &'static str, took: Duration) {
        self.redis_latency
            .get_or_create(&vec![("operation", operation.to_string())])
            .observe(took.as_secs_f64());
    }

    pub fn redis_error(&self, operation: &'static str, kind: &'static str) {
        self.redis_errors
            .get_or_create(&vec![
                ("operation", operation.to_string()),
                ("kind", kind.to_string()),
            ])
            .inc();
    }

    pub fn quota_lease(&self, result: &'static str, units: u32) {
        self.quota_leases
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        self.quota_units_leased.inc_by(u64::from(units));
    }

    pub fn quota_units_returned(&self, units: u32) {
        self.quota_units_returned.inc_by(u64::from(units));
    }

    pub fn revocation_recorded(&self) {
        self.revocations.inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels() {
        let m = Metrics::default();
        m.challenge_issued("weather", 10_000);
        m.challenge_issued("weather", 10_000);
        m.lnd_call("add_invoice", Duration::from_millis(3));
        m.lnd_error("unreachable");
        m.rate_limited("client");
        m.challenge_response(402);
        m.redis_call("lease", Duration::from_micros(300));
        m.redis_error("lease", "timeout");
        m.quota_lease("granted", 8);
        m.quota_units_returned(3);
        m.revocation_recorded();
        let text = m.render();
        for line in [
            "l402_challenges_issued_total{service=\"weather\"} 2",
            "l402_invoice_amount_msat_total{service=\"weather\"} 20000",
            "l402_lnd_request_duration_seconds_count{operation=\"add_invoice\"} 1",
            "l402_lnd_errors_total{kind=\"unreachable\"} 1",
            "l402_rate_limited_total{scope=\"client\"} 1",
            "l402_challenge_responses_total{status=\"402\"} 1",
            "l402_redis_request_duration_seconds_count{operation=\"lease\"} 1",
            "l402_redis_errors_total{operation=\"lease\",kind=\"timeout\"} 1",
            "l402_quota_leases_total{result=\"granted\"} 1",
            "l402_quota_units_leased_total 8",
            "l402_quota_units_returned_total 3",
            "l402_revocations_recorded_total 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
