//! The worker's timer, independent of its host: gives back idle blocks of counted tokens, reads
//! the shared revocations, and counts what was served from blocks. In proxy-wasm it runs in each
//! VM's root context; in the dynamic module, once per configuration on Envoy's main thread.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{FilterConfig, InvoiceService};
use crate::host::{Call, DispatchError, Level};
use crate::metrics::{Counter, Quota, Revocations};
use crate::worker::{RootCallKind, Worker};

/// What the timer asks of its host.
pub trait RootHost {
    fn dispatch(&mut self, service: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError>;
    fn count_by(&mut self, counter: Counter, n: u64);
    fn log(&self, level: Level, message: &str);
    fn now_millis(&self) -> u64;
    /// Run [`Root::tick`] every `ms` milliseconds from now on.
    fn set_tick(&mut self, ms: u64);
}

/// The timer's period until the first revocation read has succeeded.
const FIRST_READ_TICK_MS: u64 = 50;

/// The largest answer the timer reads: a page of 1,000 revocations is about 70 KiB.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

#[derive(Default)]
pub struct Root {
    config: Option<Arc<FilterConfig>>,
    /// Shared with every request; kept across reconfigurations, so neither a held block nor a
    /// revocation is forgotten.
    worker: Arc<Worker>,
    /// The timer's callouts in flight.
    calls: HashMap<u32, RootCallKind>,
    /// Revocation reads are failing: logged once when they start to, and when they recover, not
    /// on every tick of an outage.
    reads_failing: bool,
}

impl Root {
    pub fn worker(&self) -> &Arc<Worker> {
        &self.worker
    }

    pub fn config(&self) -> Option<&Arc<FilterConfig>> {
        self.config.as_ref()
    }

    pub fn configure(&mut self, host: &mut dyn RootHost, config: Arc<FilterConfig>) {
        self.config = Some(config);
        self.set_tick(host);
    }

    /// Gives back idle blocks and reads revocations when due.
    pub fn tick(&mut self, host: &mut dyn RootHost) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let served = self.worker.take_served_from_blocks();
        host.count_by(Counter::Quota(Quota::ServedFromBlock), served);
        for call in self.worker.tick(host.now_millis(), &config.counting) {
            let kind = call.kind;
            let dispatched = host.dispatch(
                &config.invoice_service,
                Call {
                    method: call.method,
                    path: &call.path,
                    body: call.body,
                    request_id: None,
                },
            );
            match dispatched {
                Ok(token) => {
                    self.calls.insert(token, kind);
                }
                Err(e) => {
                    let why = format!("cannot call the invoice service from the timer: {e:?}");
                    self.call_failed(host, kind, &why);
                }
            }
        }
    }

    /// Until the first revocation read succeeds paid requests get 503, so the timer runs fast
    /// until then.
    fn set_tick(&self, host: &mut dyn RootHost) {
        let Some(config) = &self.config else {
            return;
        };
        let mut tick = config.counting.tick_ms();
        if config.counting.revocation_sync_ms.is_some() && !self.worker.revocations_synced() {
            tick = tick.min(FIRST_READ_TICK_MS);
        }
        host.set_tick(tick);
    }

    /// Whether `token` is one of the timer's callouts.
    pub fn awaits(&self, token: u32) -> bool {
        self.calls.contains_key(&token)
    }

    /// A timer callout's answer: its `:status` (`None`: no answer at all) and its body (empty
    /// when larger than [`MAX_ANSWER_BYTES`]).
    pub fn on_answer(
        &mut self,
        host: &mut dyn RootHost,
        token: u32,
        status: Option<&[u8]>,
        body: &[u8],
    ) {
        let Some(kind) = self.calls.remove(&token) else {
            return;
        };
        if status != Some(b"200") {
            let status = String::from_utf8_lossy(status.unwrap_or_default());
            let why = format!("the invoice service answered `{status}`");
            self.call_failed(host, kind, &why);
            return;
        }
        match kind {
            RootCallKind::GiveBack { unused } => {
                host.count_by(Counter::Quota(Quota::Returns), 1);
                host.count_by(Counter::Quota(Quota::ReturnedUnits), u64::from(unused));
            }
            RootCallKind::Sync => self.on_revocations(host, body),
        }
    }

    fn on_revocations(&mut self, host: &mut dyn RootHost, body: &[u8]) {
        let was_synced = self.worker.revocations_synced();
        let counting = self.config.as_ref().map(|c| c.counting);
        let answered = counting
            .ok_or_else(|| "not configured".to_string())
            .and_then(|c| self.worker.sync_answered(body, host.now_millis(), &c));
        match answered {
            Ok(applied) => {
                host.count_by(Counter::Revocations(Revocations::Reads), 1);
                if std::mem::replace(&mut self.reads_failing, false) {
                    host.log(Level::Info, "revocations are read again");
                }
                if !was_synced && self.worker.revocations_synced() {
                    self.set_tick(host);
                }
                host.count_by(
                    Counter::Revocations(Revocations::Applied),
                    applied.added as u64,
                );
                if applied.more {
                    self.tick(host);
                }
            }
            Err(why) => self.call_failed(host, RootCallKind::Sync, &why),
        }
    }

    fn call_failed(&mut self, host: &mut dyn RootHost, kind: RootCallKind, why: &str) {
        match kind {
            RootCallKind::GiveBack { unused } => {
                host.count_by(Counter::Quota(Quota::ReturnErrors), 1);
                host.log(
                    Level::Warn,
                    &format!("{unused} unused requests stay counted: {why}"),
                );
            }
            RootCallKind::Sync => {
                self.worker.sync_failed();
                host.count_by(Counter::Revocations(Revocations::SyncErrors), 1);
                if !std::mem::replace(&mut self.reads_failing, true) {
                    host.log(
                        Level::Warn,
                        &format!("revocations cannot be read (what is known stays revoked): {why}"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l402_core::contract::LeaseAnswer;
    use l402_core::TokenId;

    #[derive(Default)]
    struct TimerHost {
        now: u64,
        dispatched: Vec<String>,
        counted: Vec<(String, u64)>,
        tick: Option<u64>,
    }

    impl RootHost for TimerHost {
        fn dispatch(&mut self, _: &InvoiceService, call: Call<'_>) -> Result<u32, DispatchError> {
            self.dispatched.push(call.path.to_string());
            Ok(self.dispatched.len() as u32)
        }
        fn count_by(&mut self, counter: Counter, n: u64) {
            self.counted.push((counter.name(), n));
        }
        fn log(&self, _: Level, _: &str) {}
        fn now_millis(&self) -> u64 {
            self.now
        }
        fn set_tick(&mut self, ms: u64) {
            self.tick = Some(ms);
        }
    }

    fn config() -> Arc<FilterConfig> {
        let json = serde_json::json!({
            "invoice_service": {"cluster": "c"},
            "routes": [{"match": {"prefix": "/"}, "service": "s"}],
            "keys": [{"id": 1, "env": "K"}],
            "quota": {"idle_return_ms": 1000}
        });
        let env = |_: &str| Some("11".repeat(32));
        FilterConfig::compile(json.to_string().as_bytes(), &env).unwrap()
    }

    #[test]
    fn an_idle_block_goes_back_and_its_units_are_counted_when_the_service_says_so() {
        let mut root = Root::default();
        let mut host = TimerHost::default();
        root.configure(&mut host, config());
        assert_eq!(host.tick, Some(500));
        let answer = LeaseAnswer {
            granted: 10,
            lease: "l1".into(),
            remaining: 0,
            held: 0,
            hold_ms: 5_000,
        };
        root.worker().leases().unwrap().keep(
            &crate::leases::Counted {
                token: TokenId([1; 32]),
                service: "weather",
                limit: 100,
            },
            &answer,
            0,
        );
        host.now = 1_500;
        root.tick(&mut host);
        assert_eq!(host.dispatched, ["/v1/quota/returns"]);
        assert!(root.awaits(1));
        root.on_answer(&mut host, 1, Some(b"200"), b"{}");
        assert!(host
            .counted
            .contains(&("l402_quota_returned_units".to_string(), 9)));
        assert!(!root.awaits(1));
    }
}
