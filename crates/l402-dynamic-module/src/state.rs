//! One filter configuration as the module holds it: the compiled plugin JSON, the worker state
//! every Envoy thread shares (blocks of counted tokens, revocations read), the timer, the
//! counters Envoy defined for it, and one credential cache per worker thread.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use l402_filter::config::FilterConfig;
use l402_filter::credential_cache::CredentialCache;
use l402_filter::host::Level;
use l402_filter::metrics::Counter;
use l402_filter::root::Root;
use l402_filter::worker::Worker;

use crate::abi::{self, ModuleBuffer};
use crate::envoy::log;
use crate::host::RootSide;
use crate::timer::{Period, Timer};

pub struct ModuleConfig {
    envoy: abi::FilterConfigEnvoyPtr,
    pub filter: Arc<FilterConfig>,
    pub worker: Arc<Worker>,
    /// Used on the main thread only (the timer's events and answers); locked for the borrow.
    root: Mutex<Root>,
    /// Envoy's id of each counter, at [`Counter::index`]; `None` where defining it failed.
    pub counters: Vec<Option<usize>>,
    /// At the worker's index: each Envoy thread keeps its own, as `jwt_authn` does.
    caches: Vec<Arc<CredentialCache>>,
    period: Period,
    timer: Mutex<Option<Timer>>,
    /// Answers to the timer's callouts that Envoy delivered while the timer was still busy
    /// making one (Envoy answers at once a callout it cannot send, e.g. with no healthy
    /// replica): handled as soon as the timer is done.
    early: Mutex<Vec<EarlyAnswer>>,
}

/// A timer callout's answer, as the timer reads it.
pub struct EarlyAnswer {
    pub id: u32,
    pub status: Option<Vec<u8>>,
    pub body: Vec<u8>,
}

// SAFETY: `envoy` is only passed back to Envoy, from the main thread (the timer's work); every
// other field is Sync.
unsafe impl Send for ModuleConfig {}
// SAFETY: as above.
unsafe impl Sync for ModuleConfig {}

impl ModuleConfig {
    /// Compiles the plugin JSON and starts the timer; the error names the field at fault.
    ///
    /// # Safety
    /// `envoy` must be the live `filter_config_envoy_ptr`, on the main thread.
    pub unsafe fn new(envoy: abi::FilterConfigEnvoyPtr, json: &[u8]) -> Result<Arc<Self>, String> {
        let env = |name: &str| std::env::var(name).ok();
        let filter = FilterConfig::compile(json, &env).map_err(|e| e.to_string())?;
        for warning in &filter.warnings {
            log(
                Level::Warn,
                &format!("l402 filter configuration: {warning}"),
            );
        }
        let counters = Counter::all()
            .map(|counter| {
                let name = counter.name();
                let mut id = 0usize;
                // SAFETY: per this function's contract; no labels.
                let result = unsafe {
                    abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                        envoy,
                        ModuleBuffer::of(name.as_bytes()),
                        std::ptr::null_mut(),
                        0,
                        &mut id,
                    )
                };
                if result != abi::METRICS_SUCCESS {
                    log(Level::Warn, &format!("cannot define counter {name}"));
                }
                (result == abi::METRICS_SUCCESS).then_some(id)
            })
            .collect();
        // SAFETY: a plain query.
        let threads = unsafe { abi::envoy_dynamic_module_callback_get_concurrency() };
        let caches = (0..threads.max(1))
            .map(|_| Arc::new(CredentialCache::new(filter.credential_cache_size)))
            .collect();
        let mut root = Root::default();
        let worker = Arc::clone(root.worker());
        let config = Arc::new(Self {
            envoy,
            filter: Arc::clone(&filter),
            worker,
            root: Mutex::new(Root::default()),
            counters,
            caches,
            period: Period::default(),
            timer: Mutex::new(None),
            early: Mutex::new(Vec::new()),
        });
        root.configure(&mut RootSide::new(&config), filter);
        if let Ok(mut slot) = config.root.lock() {
            *slot = root;
        }
        // SAFETY: per this function's contract.
        let timer = unsafe { Timer::start(envoy, config.period.clone()) };
        if timer.is_none() {
            return Err("cannot start the module's timer".into());
        }
        if let Ok(mut slot) = config.timer.lock() {
            *slot = timer;
        }
        log(
            Level::Info,
            &format!(
                "l402 filter configured: {} routes",
                config.filter.routes.routes.len()
            ),
        );
        Ok(config)
    }

    pub fn envoy(&self) -> abi::FilterConfigEnvoyPtr {
        self.envoy
    }

    pub fn period(&self) -> &Period {
        &self.period
    }

    pub fn cache(&self, worker_index: u32) -> Option<Arc<CredentialCache>> {
        self.caches.get(worker_index as usize).cloned()
    }

    /// The root, unless the timer holds it (the timer runs on the main thread, so a held lock
    /// means it is making a callout and Envoy answered at once). A panic caught while it was
    /// held poisoned it: the timer must go on (it gives blocks back and reads revocations, and
    /// a dead one would leave them unread without a sound), so the lock is taken back, said.
    fn root(&self) -> Option<MutexGuard<'_, Root>> {
        match self.root.try_lock() {
            Ok(root) => Some(root),
            Err(TryLockError::WouldBlock) => None,
            Err(TryLockError::Poisoned(poisoned)) => {
                log(
                    Level::Error,
                    "l402: the timer's state was left by a panic; carrying on with it",
                );
                self.root.clear_poison();
                Some(poisoned.into_inner())
            }
        }
    }

    /// Runs the timer's `work` on the main thread, then any answer that arrived during it.
    pub fn with_root(&self, work: impl FnOnce(&mut Root, &mut RootSide<'_>)) {
        let Some(mut root) = self.root() else {
            return;
        };
        let mut host = RootSide::new(self);
        work(&mut root, &mut host);
        loop {
            let answers = match self.early.lock() {
                Ok(mut early) => std::mem::take(&mut *early),
                Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
            };
            if answers.is_empty() {
                return;
            }
            for a in answers {
                root.on_answer(&mut host, a.id, a.status.as_deref(), &a.body);
            }
        }
    }

    /// A timer callout's answer: handled now, or, if it arrived while the timer was making a
    /// callout, when the timer is done.
    pub fn on_root_answer(&self, answer: EarlyAnswer) {
        let Some(mut root) = self.root() else {
            match self.early.lock() {
                Ok(mut early) => early.push(answer),
                Err(poisoned) => poisoned.into_inner().push(answer),
            }
            return;
        };
        let mut host = RootSide::new(self);
        root.on_answer(&mut host, answer.id, answer.status.as_deref(), &answer.body);
    }

    /// Stops the timer before the configuration goes (on the main thread).
    pub fn stop(&self) {
        if let Ok(mut timer) = self.timer.lock() {
            timer.take();
        }
    }
}
