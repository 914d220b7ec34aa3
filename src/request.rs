//! The per-request state machine. Every path ends in exactly one of `Continue` (the request goes
//! on), a local response, or `Pause` followed later by a callout answer that ends in one of those.

use std::borrow::Cow;
use std::rc::Rc;

use l402_core::contract::ChallengeRequest;
use l402_core::credentials::{
    without_l402_items, Credential, AUTHORIZATION, GRPC_METADATA_MACAROON, MACAROON,
};
use l402_core::encoding::to_base64;
use l402_core::{Rejection, Requirement, Verified};

use crate::callout::{self, FailureKind, Outcome};
use crate::canonical::{Refusal, RequestLine};
use crate::config::{Credentials, FilterConfig};
use crate::host::{header, Headers, Host, Level};
use crate::metrics::{Counter, Requests};
use crate::response;
use crate::routing::Decision;

/// Headers we set for the upstream; a client's own copies are removed from every request.
pub const TOKEN_ID_HEADER: &str = "x-l402-token-id";
pub const SERVICE_HEADER: &str = "x-l402-service";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Pause,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Headers,
    AwaitingChallenge {
        token: u32,
        service: String,
        grpc: bool,
    },
    Done,
}

pub struct RequestFilter {
    config: Rc<FilterConfig>,
    state: State,
}

impl RequestFilter {
    pub fn new(config: Rc<FilterConfig>) -> Self {
        Self {
            config,
            state: State::Headers,
        }
    }

    pub fn on_request_headers(&mut self, host: &mut dyn Host) -> Verdict {
        if std::mem::replace(&mut self.state, State::Done) != State::Headers {
            return Verdict::Continue;
        }
        let headers = host.request_headers();
        for name in [TOKEN_ID_HEADER, SERVICE_HEADER] {
            if header(&headers, name).is_some() {
                host.set_request_header(name, None);
            }
        }
        let config = Rc::clone(&self.config);
        if !config.routes.enforces() {
            host.count(Counter::Requests(Requests::Unmatched));
            return Verdict::Continue;
        }
        let grpc =
            header(&headers, "content-type").is_some_and(|v| v.starts_with(b"application/grpc"));
        let line = match RequestLine::read(&headers, &config.path_rules) {
            Ok(line) => line,
            Err(refusal) => return self.refuse(host, refusal, grpc),
        };
        let (service, capabilities) = match config.routes.decide(&line) {
            Decision::Free => {
                host.count(Counter::Requests(Requests::Free));
                return Verdict::Continue;
            }
            Decision::Unmatched => {
                host.count(Counter::Requests(Requests::Unmatched));
                return Verdict::Continue;
            }
            Decision::Deny => return self.deny(host, grpc),
            Decision::Refuse(refusal) => return self.refuse(host, refusal, grpc),
            Decision::Paid {
                service,
                capabilities,
            } => (service, capabilities),
        };

        let req = Requirement {
            service,
            capabilities: &capabilities,
            now: host.now_unix(),
        };
        let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()));
        match config.verifier.verify_headers(pairs, &req) {
            Ok((credential, verified)) => {
                self.allow(host, &headers, service, &credential, &verified);
                Verdict::Continue
            }
            Err(rejection) => self.reject(host, service, &line, grpc, &rejection),
        }
    }

    /// 400 or 414: the request line cannot be read one safe way.
    fn refuse(&self, host: &mut dyn Host, refusal: Refusal, grpc: bool) -> Verdict {
        host.count(Counter::Refused(refusal));
        if self.dry_run_lets_through(host, &format!("refuse ({})", refusal.message())) {
            return Verdict::Continue;
        }
        host.log(Level::Debug, &format!("refused: {}", refusal.message()));
        host.send_response(response::refused(refusal.status(), refusal.message(), grpc));
        Verdict::Pause
    }

    /// 404: no route, and `unmatched: deny`.
    fn deny(&self, host: &mut dyn Host, grpc: bool) -> Verdict {
        host.count(Counter::Requests(Requests::Denied));
        if self.dry_run_lets_through(host, "deny (no route)") {
            return Verdict::Continue;
        }
        host.send_response(response::refused(404, "not found", grpc));
        Verdict::Pause
    }

    /// In a dry run, counts and logs what would have been blocked; true when it lets it through.
    fn dry_run_lets_through(&self, host: &mut dyn Host, what: &str) -> bool {
        if self.config.dry_run {
            host.count(Counter::Requests(Requests::DryRunWouldReject));
            host.log(Level::Info, &format!("dry run: would {what}"));
        }
        self.config.dry_run
    }

    fn allow(
        &self,
        host: &mut dyn Host,
        headers: &Headers,
        service: &str,
        credential: &Credential,
        verified: &Verified,
    ) {
        host.count(Counter::Requests(Requests::Allowed));
        match self.config.credentials {
            Credentials::Strip => strip_l402_credentials(host, headers),
            Credentials::Keep => {}
            Credentials::Aperture => {
                // Aperture's proxy hands backends an `LSAT` and an `L402` Authorization line.
                let token = format!(
                    "{}:{}",
                    to_base64(&credential.macaroon.encode()),
                    hex::encode(credential.preimage)
                );
                host.set_request_header(AUTHORIZATION, Some(format!("LSAT {token}").as_bytes()));
                host.add_request_header(AUTHORIZATION, format!("L402 {token}").as_bytes());
            }
        }
        host.set_request_header(
            TOKEN_ID_HEADER,
            Some(verified.identifier.token_id.to_hex().as_bytes()),
        );
        host.set_request_header(SERVICE_HEADER, Some(service.as_bytes()));
    }

    fn reject(
        &mut self,
        host: &mut dyn Host,
        service: &str,
        line: &RequestLine<'_>,
        grpc: bool,
        rejection: &Rejection,
    ) -> Verdict {
        host.count(Counter::Rejected(rejection.kind()));
        if self.dry_run_lets_through(host, &format!("challenge ({service}): {rejection}")) {
            return Verdict::Continue;
        }
        host.log(
            Level::Debug,
            &format!("challenging ({service}): {rejection}"),
        );
        let client_ip = host.client_ip();
        // The canonical path: bounded by `max_path_bytes`, and without the query string, which
        // may carry the client's secrets and must not reach the service or its logs.
        let body = ChallengeRequest {
            service: service.into(),
            method: line.method().into(),
            path: line.path.strict().into(),
            client_ip: client_ip.as_deref().map(Into::into),
            reason: Some(rejection.reason().into()),
        };
        let body = match serde_json::to_vec(&body) {
            Ok(body) => body,
            Err(e) => {
                let why = format!("cannot encode callout: {e}");
                return self.fail(host, FailureKind::Dispatch, &why);
            }
        };
        match host.dispatch(&self.config.invoice_service, body) {
            Ok(token) => {
                self.state = State::AwaitingChallenge {
                    token,
                    service: service.to_string(),
                    grpc,
                };
                Verdict::Pause
            }
            Err(e) => {
                let cluster = &self.config.invoice_service.cluster;
                self.fail(
                    host,
                    FailureKind::Dispatch,
                    &format!("invoice service cluster `{cluster}` refused the call: {e:?}"),
                )
            }
        }
    }

    /// The invoice service answered (or Envoy answered for it: timeout, no upstream, reset).
    pub fn on_callout_response(
        &mut self,
        host: &mut dyn Host,
        token: u32,
        headers: &Headers,
        body_size: usize,
        body: Option<&[u8]>,
    ) {
        let (service, grpc) = match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitingChallenge {
                token: expected,
                service,
                grpc,
            } if expected == token => (service, grpc),
            other => {
                self.state = other;
                host.log(
                    Level::Warn,
                    &format!("ignoring callout answer {token} not awaited"),
                );
                return;
            }
        };
        match callout::interpret(headers, body_size, body) {
            Outcome::Challenge {
                challenge,
                amount_msat,
            } => {
                host.count(Counter::Requests(Requests::Challenged));
                host.send_response(response::challenge(&challenge, &service, amount_msat, grpc));
            }
            Outcome::RateLimited { retry_after } => {
                host.count(Counter::Requests(Requests::RateLimited));
                host.send_response(response::rate_limited(&retry_after));
            }
            Outcome::Failed(failure) => {
                if let Verdict::Continue = self.fail(host, failure.kind(), &failure.describe()) {
                    host.resume();
                }
            }
        }
    }

    /// No challenge could be had: 503, or with `fail_open` let the request through.
    fn fail(&self, host: &mut dyn Host, kind: FailureKind, why: &str) -> Verdict {
        host.count(Counter::CalloutError(kind));
        if self.config.fail_open {
            host.count(Counter::Requests(Requests::FailOpen));
            host.log(
                Level::Warn,
                &format!("fail_open: letting an unpaid request through: {why}"),
            );
            return Verdict::Continue;
        }
        host.log(Level::Warn, why);
        host.send_response(response::unavailable(self.config.retry_after_seconds));
        Verdict::Pause
    }
}

/// Removes every L402 credential before the request goes upstream, not only the one that was
/// verified: a second token in another header is a credential all the same. `Authorization`
/// lines keep their other schemes (a `Bearer` for the upstream).
fn strip_l402_credentials(host: &mut dyn Host, headers: &Headers) {
    for name in [MACAROON, GRPC_METADATA_MACAROON] {
        if header(headers, name).is_some() {
            host.set_request_header(name, None);
        }
    }
    let lines: Vec<&[u8]> = headers
        .iter()
        .filter(|(n, _)| n == AUTHORIZATION)
        .map(|(_, v)| v.as_slice())
        .collect();
    let kept: Vec<Cow<'_, [u8]>> = lines.iter().filter_map(|v| without_l402_items(v)).collect();
    if kept.len() == lines.len() && kept.iter().all(|k| matches!(k, Cow::Borrowed(_))) {
        return;
    }
    host.set_request_header(AUTHORIZATION, None);
    for line in kept {
        host.add_request_header(AUTHORIZATION, &line);
    }
}
