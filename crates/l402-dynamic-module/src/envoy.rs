//! Safe wrappers over the callbacks in [`crate::abi`] for headers, local replies, callouts and
//! logs. The one-off callbacks (counters in `state`/`host`, the scheduler in `timer`, the worker
//! index in `hooks`) are called where they are used, each under its own safety note.

use std::ffi::c_void;

use l402_filter::config::InvoiceService;
use l402_filter::host::{Call, DispatchError, Level, REQUEST_ID_HEADER};
use l402_filter::response::LocalResponse;

use crate::abi::{self, EnvoyBuffer, LogLevel, ModuleBuffer, ModuleHttpHeader};

pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    };
    // SAFETY: the buffers point to live bytes for the duration of the calls.
    unsafe {
        if abi::envoy_dynamic_module_callback_log_enabled(level) {
            abi::envoy_dynamic_module_callback_log_v2(
                level,
                ModuleBuffer::of(message.as_bytes()),
                ModuleBuffer::of(b"l402"),
                0,
            );
        }
    }
}

/// Every line of request header `name` (the panic probe's per-name read).
///
/// # Safety
/// `filter` must be the stream's live `filter_envoy_ptr`, inside one of its hooks.
pub unsafe fn request_header_lines(filter: *mut c_void, name: &str, out: &mut Vec<Vec<u8>>) {
    let key = ModuleBuffer::of(name.as_bytes());
    // Envoy reports how many lines there are with the first.
    let mut count = 1usize;
    let mut index = 0usize;
    while index < count {
        let mut value = EnvoyBuffer::NULL;
        // SAFETY: per this function's contract; the out-pointers are live locals.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                filter,
                abi::REQUEST_HEADER,
                key,
                &mut value,
                index,
                &mut count,
            )
        };
        if !found {
            return;
        }
        // SAFETY: Envoy's buffer is valid until the hook returns or a header is set.
        out.push(unsafe { value.bytes() }.to_vec());
        index += 1;
    }
}

/// Every request header line whose name is in `names`, read in one pass over Envoy's map (a
/// lookup per name costs more: each builds a key and searches the map).
///
/// # Safety
/// As [`request_header_lines`].
pub unsafe fn request_headers(filter: *mut c_void, names: &[&str]) -> l402_filter::host::Headers {
    // SAFETY: per this function's contract.
    let size = unsafe {
        abi::envoy_dynamic_module_callback_http_get_headers_size(filter, abi::REQUEST_HEADER)
    };
    let empty = abi::EnvoyHttpHeader {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
    let mut all = vec![empty; size];
    // SAFETY: `all` has room for the `size` headers Envoy reported, in this same hook.
    let read = unsafe {
        abi::envoy_dynamic_module_callback_http_get_headers(
            filter,
            abi::REQUEST_HEADER,
            all.as_mut_ptr(),
        )
    };
    if !read {
        return Vec::new();
    }
    all.iter()
        .filter_map(|h| {
            let key = EnvoyBuffer {
                ptr: h.key_ptr,
                length: h.key_length,
            };
            // SAFETY: Envoy's buffers, valid until the hook returns or a header is set.
            let key = unsafe { key.bytes() };
            let name = names
                .iter()
                .find(|n| n.as_bytes().eq_ignore_ascii_case(key))?;
            let value = EnvoyBuffer {
                ptr: h.value_ptr,
                length: h.value_length,
            };
            // SAFETY: as above.
            Some((name.to_string(), unsafe { value.bytes() }.to_vec()))
        })
        .collect()
}

/// # Safety
/// As [`request_header_lines`].
pub unsafe fn set_request_header(filter: *mut c_void, name: &str, value: Option<&[u8]>) -> bool {
    let value = value.map_or(ModuleBuffer::NULL, ModuleBuffer::of);
    // SAFETY: per this function's contract; a null value removes the header.
    unsafe {
        abi::envoy_dynamic_module_callback_http_set_header(
            filter,
            abi::REQUEST_HEADER,
            ModuleBuffer::of(name.as_bytes()),
            value,
        )
    }
}

/// # Safety
/// As [`request_header_lines`].
pub unsafe fn add_request_header(filter: *mut c_void, name: &str, value: &[u8]) -> bool {
    // SAFETY: per this function's contract.
    unsafe {
        abi::envoy_dynamic_module_callback_http_add_header(
            filter,
            abi::REQUEST_HEADER,
            ModuleBuffer::of(name.as_bytes()),
            ModuleBuffer::of(value),
        )
    }
}

/// # Safety
/// As [`request_header_lines`].
pub unsafe fn client_address(filter: *mut c_void) -> Option<String> {
    let mut value = EnvoyBuffer::NULL;
    // SAFETY: per this function's contract.
    let found = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
            filter,
            abi::ATTRIBUTE_SOURCE_ADDRESS,
            &mut value,
        )
    };
    // SAFETY: Envoy's buffer, valid for this hook.
    found.then(|| String::from_utf8_lossy(unsafe { value.bytes() }).into_owned())
}

/// # Safety
/// As [`request_header_lines`].
pub unsafe fn send_response(filter: *mut c_void, response: &LocalResponse) {
    let mut headers: Vec<ModuleHttpHeader> = response
        .headers
        .iter()
        .map(|(n, v)| ModuleHttpHeader::of(n.as_bytes(), v.as_bytes()))
        .collect();
    // SAFETY: per this function's contract; every buffer outlives the call.
    unsafe {
        abi::envoy_dynamic_module_callback_http_send_response(
            filter,
            response.status,
            headers.as_mut_ptr(),
            headers.len(),
            ModuleBuffer::of(&response.body),
            ModuleBuffer::of(response.details.as_bytes()),
        );
    }
}

/// # Safety
/// As [`request_header_lines`].
pub unsafe fn continue_decoding(filter: *mut c_void) {
    // SAFETY: per this function's contract.
    unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(filter) }
}

/// Where a callout starts from: a request, or the configuration (the timer's calls).
#[derive(Clone, Copy)]
pub enum Caller {
    Stream(*mut c_void),
    Config(*mut c_void),
}

/// A callout to the invoice service's cluster; its id comes back with the answer.
///
/// # Safety
/// The caller's pointer must be live: a stream inside its hook, or a configuration on the main
/// thread.
pub unsafe fn dispatch(
    caller: Caller,
    service: &InvoiceService,
    call: Call<'_>,
) -> Result<u32, DispatchError> {
    let length = call.body.len().to_string();
    let mut lines: Vec<(&str, &str)> = vec![
        (":method", call.method),
        (":path", call.path),
        ("host", service.authority.as_str()),
    ];
    if !call.body.is_empty() {
        lines.push(("content-type", "application/json"));
        lines.push(("content-length", length.as_str()));
    }
    if let Some(id) = call.request_id {
        lines.push((REQUEST_ID_HEADER, id));
    }
    let mut headers: Vec<ModuleHttpHeader> = lines
        .iter()
        .map(|(n, v)| ModuleHttpHeader::of(n.as_bytes(), v.as_bytes()))
        .collect();
    let cluster = ModuleBuffer::of(service.cluster.as_bytes());
    let body = ModuleBuffer::of(&call.body);
    let mut id = 0u64;
    // SAFETY: per this function's contract; every buffer outlives the call.
    let result = unsafe {
        match caller {
            Caller::Stream(filter) => abi::envoy_dynamic_module_callback_http_filter_http_callout(
                filter,
                &mut id,
                cluster,
                headers.as_mut_ptr(),
                headers.len(),
                body,
                service.timeout_ms,
            ),
            Caller::Config(config) => {
                abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                    config,
                    &mut id,
                    cluster,
                    headers.as_mut_ptr(),
                    headers.len(),
                    body,
                    service.timeout_ms,
                )
            }
        }
    };
    if result != abi::CALLOUT_INIT_SUCCESS {
        let name = abi::CALLOUT_INIT_RESULTS
            .get(result as usize)
            .copied()
            .unwrap_or("unknown");
        return Err(DispatchError::Refused(name.into()));
    }
    // The filter's tokens are 32-bit (proxy-wasm's); the answer's id is cut the same way.
    Ok(id as u32)
}

/// A callout's answer, copied out of Envoy's buffers: the headers, the body's size, and the body
/// if it is within `limit`. No answer at all (a reset, one too large) is empty: no `:status`,
/// which the filter and the timer read as a failure.
///
/// # Safety
/// The pointers and sizes are the ones Envoy handed to the callout-done hook.
pub unsafe fn answer(
    result: u32,
    headers: *const abi::EnvoyHttpHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
    limit: usize,
) -> (l402_filter::host::Headers, usize, Option<Vec<u8>>) {
    if result != abi::CALLOUT_SUCCESS {
        return (Vec::new(), 0, None);
    }
    let headers: &[abi::EnvoyHttpHeader] = if headers.is_null() {
        &[]
    } else {
        // SAFETY: Envoy's array of `headers_size` headers, valid for the hook.
        unsafe { std::slice::from_raw_parts(headers, headers_size) }
    };
    let chunks: &[EnvoyBuffer] = if chunks.is_null() {
        &[]
    } else {
        // SAFETY: Envoy's array of `chunks_size` buffers, valid for the hook.
        unsafe { std::slice::from_raw_parts(chunks, chunks_size) }
    };
    let lines = headers
        .iter()
        .map(|h| {
            let name = EnvoyBuffer {
                ptr: h.key_ptr,
                length: h.key_length,
            };
            let value = EnvoyBuffer {
                ptr: h.value_ptr,
                length: h.value_length,
            };
            // SAFETY: Envoy's buffers, valid for the hook.
            let (name, value) = unsafe { (name.bytes(), value.bytes()) };
            (
                String::from_utf8_lossy(name).to_ascii_lowercase(),
                value.to_vec(),
            )
        })
        .collect();
    let size: usize = chunks.iter().map(|c| c.length).sum();
    let body = (size <= limit).then(|| {
        let mut body = Vec::with_capacity(size);
        for chunk in chunks {
            // SAFETY: Envoy's buffers, valid for the hook.
            body.extend_from_slice(unsafe { chunk.bytes() });
        }
        body
    });
    (lines, size, body)
}
