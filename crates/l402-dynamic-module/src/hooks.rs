//! The event hooks Envoy resolves in the module (`envoy_dynamic_module_on_*`), each a thin,
//! panic-guarded call into [`crate::state`] and the host-independent filter. Envoy 1.40 requires
//! every HTTP filter hook below, used or not; the configuration's scheduled and callout hooks
//! are optional ones, which the timer needs.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::ffi::c_char;
use std::sync::Arc;

use l402_filter::callout;
use l402_filter::host::{Headers, Level};
use l402_filter::request::{RequestFilter, Verdict};
use l402_filter::response;
use l402_filter::root::MAX_ANSWER_BYTES;

use crate::abi::{
    self, EnvoyBuffer, EnvoyHttpHeader, FilterConfigEnvoyPtr, FilterConfigModulePtr,
    FilterEnvoyPtr, FilterModulePtr,
};
use crate::envoy::{self, log};
use crate::guard::guarded;
use crate::host::StreamHost;
use crate::state::{EarlyAnswer, ModuleConfig};

/// The benchmark's do-nothing build (`--features noop-probe`): no stream object, every request
/// goes on untouched.
const NOOP: bool = cfg!(feature = "noop-probe");

/// One request: the filter's state machine, and what the hooks need around it.
pub struct Stream {
    config: Arc<ModuleConfig>,
    /// Used by one hook at a time: `busy` says when, and an answer arriving meanwhile waits in
    /// `early`.
    filter: UnsafeCell<RequestFilter>,
    /// The request is held back: its body and trailers hooks answer "stop" until it is resumed.
    pub paused: Cell<bool>,
    busy: Cell<bool>,
    /// A callout answer Envoy delivered while the filter was still making the callout (it
    /// answers at once a callout it cannot send, e.g. with no healthy replica): handled when
    /// the hook that made the callout is done with the filter.
    early: RefCell<Option<Answer>>,
    /// The filter let the request go on while its request-headers hook was running: the hook
    /// answers `Continue` instead of resuming a request it has not stopped yet.
    pub resume_in_hook: Cell<bool>,
}

struct Answer {
    id: u32,
    headers: Headers,
    size: usize,
    body: Option<Vec<u8>>,
}

impl Stream {
    /// Runs `work` on the filter, then every answer that arrived during it; `None` if another
    /// hook of the stream is using the filter (never expected: the caller stores the answer).
    fn with_filter<T>(
        &self,
        host: &mut StreamHost<'_>,
        work: impl FnOnce(&mut RequestFilter, &mut StreamHost<'_>) -> T,
    ) -> Option<T> {
        if self.busy.replace(true) {
            return None;
        }
        // SAFETY: `busy` makes this the only reference to the filter until it is cleared.
        let filter = unsafe { &mut *self.filter.get() };
        let out = work(filter, host);
        loop {
            // Taken in a statement of its own: the borrow must end before the filter runs,
            // which may start another callout that Envoy answers at once into `early`.
            let next = self.early.borrow_mut().take();
            let Some(a) = next else { break };
            filter.on_callout_response(host, a.id, &a.headers, a.size, a.body.as_deref());
        }
        self.busy.set(false);
        Some(out)
    }
}

/// # Safety
/// `ptr` is what [`envoy_dynamic_module_on_http_filter_config_new`] returned and Envoy has not
/// destroyed it.
unsafe fn config_of<'a>(ptr: FilterConfigModulePtr) -> Option<&'a ModuleConfig> {
    // SAFETY: per this function's contract.
    unsafe { ptr.cast::<ModuleConfig>().as_ref() }
}

/// # Safety
/// `ptr` is what [`envoy_dynamic_module_on_http_filter_new`] returned and Envoy has not
/// destroyed it; Envoy calls a stream's hooks on one thread.
unsafe fn stream_of<'a>(ptr: FilterModulePtr) -> Option<&'a Stream> {
    if NOOP {
        return None;
    }
    // SAFETY: per this function's contract; shared: the filter inside is reached through
    // `Stream::with_filter` only.
    unsafe { ptr.cast::<Stream>().as_ref() }
}

/// A request whose handling failed inside the module: 503, never let through.
fn fail_closed(filter: FilterEnvoyPtr, stream: Option<&Stream>) {
    if let Some(stream) = stream {
        // The filter may be anywhere in its state machine: nothing of it is used again.
        stream.busy.set(true);
    }
    let retry_after = stream.map_or(5, |s| s.config.filter.retry_after_seconds);
    // SAFETY: called from the stream's own hook.
    unsafe { envoy::send_response(filter, &response::unavailable(retry_after)) };
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    #[cfg(feature = "missing-callback-probe")]
    // SAFETY: never reached: the module is refused at load, before this runs.
    unsafe {
        abi::envoy_dynamic_module_callback_l402_probe_missing();
    }
    abi::ABI_VERSION.as_ptr()
}

/// # Safety
/// Called by Envoy on the main thread with its configuration pointer and buffers.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    filter_config_envoy_ptr: FilterConfigEnvoyPtr,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> FilterConfigModulePtr {
    guarded(
        "configuration",
        || {
            // SAFETY: Envoy's buffer, valid for this hook.
            let json = unsafe { config.bytes() };
            // SAFETY: Envoy's live pointer, on the main thread.
            match unsafe { ModuleConfig::new(filter_config_envoy_ptr, json) } {
                Ok(config) => Arc::into_raw(config).cast(),
                Err(e) => {
                    log(
                        Level::Error,
                        &format!("l402 filter configuration refused: {e}"),
                    );
                    std::ptr::null()
                }
            }
        },
        std::ptr::null,
    )
}

/// # Safety
/// Called by Envoy on the main thread once every stream of the configuration is gone.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(
    filter_config_ptr: FilterConfigModulePtr,
) {
    guarded(
        "configuration teardown",
        || {
            if filter_config_ptr.is_null() {
                return;
            }
            // SAFETY: the pointer came from Arc::into_raw in config_new.
            let config = unsafe { Arc::from_raw(filter_config_ptr.cast::<ModuleConfig>()) };
            config.stop();
        },
        || (),
    );
}

/// Per-route configuration is not supported: routes are in the plugin JSON.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> *const std::ffi::c_void {
    log(
        Level::Error,
        "l402: per-route configuration is not supported; routes belong in the filter's JSON",
    );
    std::ptr::null()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    _config: *const std::ffi::c_void,
) {
}

/// # Safety
/// Called by Envoy on a worker thread for each new stream.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    filter_config_ptr: FilterConfigModulePtr,
    filter_envoy_ptr: FilterEnvoyPtr,
) -> FilterModulePtr {
    if NOOP {
        // Envoy answers 500 for a stream without a filter object: any non-null pointer will do,
        // as no hook of this build reads it (`stream_of` is always `None`).
        return std::ptr::NonNull::<Stream>::dangling()
            .as_ptr()
            .cast_const()
            .cast();
    }
    guarded(
        "stream creation",
        || {
            if filter_config_ptr.is_null() {
                return std::ptr::null();
            }
            // SAFETY: the pointer came from Arc::into_raw and the configuration outlives its
            // streams; this takes one more reference for the stream.
            let config = unsafe {
                Arc::increment_strong_count(filter_config_ptr.cast::<ModuleConfig>());
                Arc::from_raw(filter_config_ptr.cast::<ModuleConfig>())
            };
            // SAFETY: a query on the new stream.
            let index = unsafe {
                abi::envoy_dynamic_module_callback_http_filter_get_worker_index(filter_envoy_ptr)
            };
            let mut filter =
                RequestFilter::new(Arc::clone(&config.filter), Arc::clone(&config.worker));
            if let Some(cache) = config.cache(index) {
                filter = filter.with_cache(cache);
            }
            let stream = Box::new(Stream {
                config,
                filter: UnsafeCell::new(filter),
                paused: Cell::new(false),
                busy: Cell::new(false),
                early: RefCell::new(None),
                resume_in_hook: Cell::new(false),
            });
            Box::into_raw(stream).cast_const().cast()
        },
        // Envoy answers 500 for a stream whose filter could not be made: nothing goes upstream.
        std::ptr::null,
    )
}

/// # Safety
/// Called by Envoy with the stream's live pointers.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    _end_of_stream: bool,
) -> u32 {
    if NOOP {
        return abi::HEADERS_CONTINUE;
    }
    guarded(
        "request headers",
        || {
            // SAFETY: Envoy's live stream pointer.
            let Some(stream) = (unsafe { stream_of(filter_module_ptr) }) else {
                fail_closed(filter_envoy_ptr, None);
                return abi::HEADERS_STOP_ITERATION;
            };
            #[cfg(feature = "panic-probe")]
            probe(filter_envoy_ptr);
            let mut host = StreamHost {
                filter: filter_envoy_ptr,
                config: &stream.config,
                stream,
                in_request_headers: true,
            };
            let Some(verdict) =
                stream.with_filter(&mut host, |filter, host| filter.on_request_headers(host))
            else {
                // The filter is in use or was given up by a failure: answered, never passed on.
                fail_closed(filter_envoy_ptr, Some(stream));
                return abi::HEADERS_STOP_ITERATION;
            };
            if verdict == Verdict::Continue || stream.resume_in_hook.get() {
                abi::HEADERS_CONTINUE
            } else {
                stream.paused.set(true);
                abi::HEADERS_STOP_ITERATION
            }
        },
        || {
            // SAFETY: as above.
            fail_closed(filter_envoy_ptr, unsafe { stream_of(filter_module_ptr) });
            abi::HEADERS_STOP_ITERATION
        },
    )
}

/// The injected fault of the panic test build: a request with `x-l402-test-panic` panics here.
#[cfg(feature = "panic-probe")]
fn probe(filter: FilterEnvoyPtr) {
    let mut lines = Vec::new();
    // SAFETY: called from the stream's own hook.
    unsafe { envoy::request_header_lines(filter, "x-l402-test-panic", &mut lines) };
    if !lines.is_empty() {
        #[allow(clippy::panic)]
        {
            panic!("injected by the panic-probe build");
        }
    }
}

/// The timer's injected fault in the panic test build: with `L402_TEST_PANIC_TIMER` set, its
/// first tick panics while it holds the timer's state.
#[cfg(feature = "panic-probe")]
fn timer_probe() {
    static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var_os("L402_TEST_PANIC_TIMER").is_some()
        && !PANICKED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        #[allow(clippy::panic)]
        {
            panic!("injected into the timer by the panic-probe build");
        }
    }
}

/// Whether a stream still waits for the invoice service: its body and trailers are held back
/// until it is resumed (a `Continue` from them would send the request on unpaid).
///
/// # Safety
/// As [`stream_of`].
unsafe fn holds_back(filter_module_ptr: FilterModulePtr) -> bool {
    // SAFETY: per this function's contract; only the flag is read.
    unsafe { stream_of(filter_module_ptr) }.is_some_and(|s| s.paused.get())
}

/// # Safety
/// As [`envoy_dynamic_module_on_http_filter_request_headers`].
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    _end_of_stream: bool,
) -> u32 {
    // SAFETY: as documented.
    if unsafe { holds_back(filter_module_ptr) } {
        BODY_STOP_AND_BUFFER
    } else {
        abi::CONTINUE
    }
}

/// `StopIterationAndBuffer` of the body status, `StopIteration` of the trailers status.
const BODY_STOP_AND_BUFFER: u32 = 1;
const TRAILERS_STOP: u32 = 1;

/// # Safety
/// As [`envoy_dynamic_module_on_http_filter_request_headers`].
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
) -> u32 {
    // SAFETY: as documented.
    if unsafe { holds_back(filter_module_ptr) } {
        TRAILERS_STOP
    } else {
        abi::CONTINUE
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _end_of_stream: bool,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _end_of_stream: bool,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}

/// # Safety
/// Called by Envoy once, when the stream is gone.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(
    filter_module_ptr: FilterModulePtr,
) {
    guarded(
        "stream teardown",
        || {
            if !filter_module_ptr.is_null() && !NOOP {
                // SAFETY: the pointer came from Box::into_raw in filter_new.
                drop(unsafe { Box::from_raw(filter_module_ptr.cast::<Stream>().cast_mut()) });
            }
        },
        || (),
    );
}

/// # Safety
/// Called by Envoy with the stream's live pointers and the answer's buffers.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *const EnvoyBuffer,
    body_chunks_size: usize,
) {
    guarded(
        "callout answer",
        || {
            // SAFETY: Envoy's live stream pointer.
            let Some(stream) = (unsafe { stream_of(filter_module_ptr) }) else {
                return;
            };
            // SAFETY: Envoy's buffers, valid for this hook.
            let (headers, size, body) = unsafe {
                envoy::answer(
                    result,
                    headers,
                    headers_size,
                    body_chunks,
                    body_chunks_size,
                    callout::MAX_RESPONSE_BYTES,
                )
            };
            let answer = Answer {
                id: callout_id as u32,
                headers,
                size,
                body,
            };
            let mut host = StreamHost {
                filter: filter_envoy_ptr,
                config: &stream.config,
                stream,
                in_request_headers: false,
            };
            if stream.busy.get() {
                // Answered while the filter was still making the callout.
                stream.early.replace(Some(answer));
                return;
            }
            stream.with_filter(&mut host, |filter, host| {
                filter.on_callout_response(
                    host,
                    answer.id,
                    &answer.headers,
                    answer.size,
                    answer.body.as_deref(),
                );
            });
        },
        || {
            // SAFETY: as above.
            fail_closed(filter_envoy_ptr, unsafe { stream_of(filter_module_ptr) });
        },
    );
}

/// # Safety
/// Called by Envoy on the main thread when the timer's event is due.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _filter_config_envoy_ptr: FilterConfigEnvoyPtr,
    filter_config_ptr: FilterConfigModulePtr,
    _event_id: u64,
) {
    guarded(
        "timer",
        || {
            // SAFETY: Envoy's live configuration pointer.
            let Some(config) = (unsafe { config_of(filter_config_ptr) }) else {
                return;
            };
            config.with_root(|root, host| {
                #[cfg(feature = "panic-probe")]
                timer_probe();
                root.tick(host)
            });
        },
        || (),
    );
}

/// # Safety
/// Called by Envoy on the main thread with the answer to one of the timer's callouts.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _filter_config_envoy_ptr: FilterConfigEnvoyPtr,
    filter_config_ptr: FilterConfigModulePtr,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *const EnvoyBuffer,
    body_chunks_size: usize,
) {
    guarded(
        "timer callout answer",
        || {
            // SAFETY: Envoy's live configuration pointer.
            let Some(config) = (unsafe { config_of(filter_config_ptr) }) else {
                return;
            };
            // SAFETY: Envoy's buffers, valid for this hook.
            let (headers, _, body) = unsafe {
                envoy::answer(
                    result,
                    headers,
                    headers_size,
                    body_chunks,
                    body_chunks_size,
                    MAX_ANSWER_BYTES,
                )
            };
            let status = l402_filter::host::header(&headers, ":status").map(<[u8]>::to_vec);
            config.on_root_answer(EarlyAnswer {
                id: callout_id as u32,
                status,
                body: body.unwrap_or_default(),
            });
        },
        || (),
    );
}

// Hooks Envoy requires of every HTTP filter module, for features this filter does not use.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _headers: *const EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _trailers: *const EnvoyHttpHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _event_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}
