//! The configuration's timer. HTTP filters get no timer from Envoy, so a thread of the module's
//! own waits out each period and asks Envoy (through the configuration's scheduler) to run
//! `on_http_filter_config_scheduled` on the main thread, where the timer's work and its callouts
//! happen. The thread never touches the filter's state.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::abi;

#[derive(Debug)]
struct Schedule {
    period_ms: u64,
    stopped: bool,
}

/// The period the thread waits; set before the thread starts and whenever the timer asks.
#[derive(Debug, Clone)]
pub struct Period(Arc<(Mutex<Schedule>, Condvar)>);

impl Default for Period {
    fn default() -> Self {
        Self(Arc::new((
            Mutex::new(Schedule {
                period_ms: 1_000,
                stopped: false,
            }),
            Condvar::new(),
        )))
    }
}

impl Period {
    pub fn set(&self, ms: u64) {
        if let Ok(mut schedule) = self.0 .0.lock() {
            schedule.period_ms = ms.max(1);
            self.0 .1.notify_all();
        }
    }

    fn stop(&self) {
        if let Ok(mut schedule) = self.0 .0.lock() {
            schedule.stopped = true;
            self.0 .1.notify_all();
        }
    }

    /// Waits one period; false once stopped.
    fn wait(&self) -> bool {
        let Ok(schedule) = self.0 .0.lock() else {
            return false;
        };
        if schedule.stopped {
            return false;
        }
        let period = Duration::from_millis(schedule.period_ms);
        match self.0 .1.wait_timeout(schedule, period) {
            Ok((schedule, _)) => !schedule.stopped,
            Err(_) => false,
        }
    }
}

/// Envoy's scheduler: posting to the main thread's dispatcher is safe from any thread.
struct Scheduler(abi::ConfigSchedulerPtr);

// SAFETY: the scheduler only posts events to Envoy's main dispatcher, which is thread-safe; it is
// deleted on the main thread after the thread using it has been joined.
unsafe impl Send for Scheduler {}

pub struct Timer {
    period: Period,
    thread: Option<JoinHandle<Scheduler>>,
}

impl Timer {
    /// Starts committing events every period of `period` to the configuration `config`.
    ///
    /// # Safety
    /// `config` must be the live `filter_config_envoy_ptr`, on the main thread.
    pub unsafe fn start(config: abi::FilterConfigEnvoyPtr, period: Period) -> Option<Self> {
        // SAFETY: per this function's contract.
        let scheduler =
            unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(config) };
        if scheduler.is_null() {
            return None;
        }
        let scheduler = Scheduler(scheduler);
        let waits = period.clone();
        let thread = std::thread::Builder::new()
            .name("l402-timer".into())
            .spawn(move || {
                let scheduler = scheduler;
                while waits.wait() {
                    // SAFETY: the scheduler lives until this thread has been joined.
                    unsafe {
                        abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
                            scheduler.0,
                            0,
                        );
                    }
                }
                scheduler
            })
            .ok()?;
        Some(Self {
            period,
            thread: Some(thread),
        })
    }
}

impl Drop for Timer {
    /// Stops the thread at once (it is woken, not waited out) and deletes the scheduler.
    fn drop(&mut self) {
        self.period.stop();
        if let Some(Ok(scheduler)) = self.thread.take().map(JoinHandle::join) {
            // SAFETY: no thread uses it any more; dropped on the main thread (config destroy).
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler.0);
            }
        }
    }
}
