//! The filter's own answer, sent through proxy-wasm's `proxy_send_local_response`.
//!
//! The SDK's `send_http_response` passes no response code details, so every answer the filter
//! made showed an empty `details` in the access log (the dynamic module passes them), and it
//! panics if Envoy refuses the call, which would kill the VM. This is the same host call with
//! the details passed and a refusal returned.

use l402_filter::response::LocalResponse;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
}

/// proxy-wasm's `Ok`; any other value is Envoy refusing the call.
const OK: u32 = 0;
/// No gRPC status of Envoy's own: a gRPC answer carries its status in its headers.
const NO_GRPC_STATUS: i32 = -1;

/// Sends `response` in place of the upstream's; the host's status if it refused.
pub fn send(response: &LocalResponse) -> Result<(), u32> {
    let headers = serialize(&response.headers);
    let details = response.details.as_bytes();
    let body = &response.body;
    // The SDK passes null for no body; Envoy reads nothing either way.
    let body_data = if body.is_empty() {
        std::ptr::null()
    } else {
        body.as_ptr()
    };
    // SAFETY: each pointer and length describes a buffer that lives until the call returns,
    // and the host only reads them.
    let status = unsafe {
        proxy_send_local_response(
            response.status,
            details.as_ptr(),
            details.len(),
            body_data,
            body.len(),
            headers.as_ptr(),
            headers.len(),
            NO_GRPC_STATUS,
        )
    };
    if status == OK {
        Ok(())
    } else {
        Err(status)
    }
}

/// proxy-wasm's header map: the pair count, each name's and value's length (all u32,
/// little-endian), then each name and value followed by a NUL.
fn serialize(headers: &[(String, String)]) -> Vec<u8> {
    let size = 4 + headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 10)
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&len32(headers.len()));
    for (name, value) in headers {
        bytes.extend_from_slice(&len32(name.len()));
        bytes.extend_from_slice(&len32(value.len()));
    }
    for (name, value) in headers {
        for part in [name, value] {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0);
        }
    }
    bytes
}

/// A length as the ABI's u32. Headers are the filter's own, far below 4 GiB.
fn len32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::serialize;

    #[test]
    fn serializes_the_header_map_as_the_abi_lays_it_out() {
        let headers = [
            ("a".to_string(), "bc".to_string()),
            ("de".into(), "".into()),
        ];
        let expected: Vec<u8> = [
            &2u32.to_le_bytes()[..],
            &1u32.to_le_bytes(),
            &2u32.to_le_bytes(),
            &2u32.to_le_bytes(),
            &0u32.to_le_bytes(),
            b"a\0bc\0de\0\0",
        ]
        .concat();
        assert_eq!(serialize(&headers), expected);
        assert_eq!(serialize(&[]), 0u32.to_le_bytes());
    }
}
