//! The per-request state machine. Every path ends in exactly one of `Continue` (the request goes
//! on), a local response, or `Pause` followed later by a callout answer that ends in one of those.

use std::rc::Rc;

use l402_core::credentials::{Credential, Source, AUTHORIZATION, GRPC_METADATA_MACAROON, MACAROON};
use l402_core::encoding::to_base64;
use l402_core::{Rejection, Requirement, Verified};

use crate::callout::{self, ChallengeRequest, Outcome};
use crate::config::FilterConfig;
use crate::host::{Headers, Host, Level};
use crate::metrics;
use crate::response;
use crate::route::RouteAction;

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
        host.set_request_header(TOKEN_ID_HEADER, None);
        host.set_request_header(SERVICE_HEADER, None);

        let headers = host.request_headers();
        let line = RequestLine {
            path: text(&headers, ":path"),
            method: text(&headers, ":method"),
            authority: text(&headers, ":authority"),
        };
        let config = Rc::clone(&self.config);
        let Some(route) = config.route(line.path, line.method, line.authority) else {
            host.count(metrics::UNMATCHED);
            return Verdict::Continue;
        };
        let (service, capabilities) = match &route.action {
            RouteAction::Free => {
                host.count(metrics::FREE);
                return Verdict::Continue;
            }
            RouteAction::Paid {
                service,
                capabilities,
            } => (service.as_str(), capabilities.as_slice()),
        };

        let req = Requirement {
            service,
            capabilities,
            now: host.now_unix(),
        };
        let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()));
        match config.verifier.verify_headers(pairs, &req) {
            Ok((credential, verified)) => {
                self.allow(host, service, &credential, &verified);
                Verdict::Continue
            }
            Err(rejection) => self.reject(host, service, &line, &headers, &rejection),
        }
    }

    fn allow(
        &self,
        host: &mut dyn Host,
        service: &str,
        credential: &Credential,
        verified: &Verified,
    ) {
        host.count(metrics::ALLOWED);
        if self.config.forward_aperture_headers {
            // Aperture's proxy hands backends an `LSAT` and an `L402` Authorization line.
            let token = format!(
                "{}:{}",
                to_base64(&credential.macaroon.encode()),
                hex::encode(credential.preimage)
            );
            host.set_request_header(AUTHORIZATION, Some(format!("LSAT {token}").as_bytes()));
            host.add_request_header(AUTHORIZATION, format!("L402 {token}").as_bytes());
        } else if self.config.strip_credentials {
            let name = match credential.source {
                Source::Authorization => AUTHORIZATION,
                Source::GrpcMetadataMacaroon => GRPC_METADATA_MACAROON,
                Source::Macaroon => MACAROON,
            };
            host.set_request_header(name, None);
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
        headers: &Headers,
        rejection: &Rejection,
    ) -> Verdict {
        let reason = rejection.reason();
        host.count(&metrics::rejected(reason));
        if self.config.dry_run {
            host.count(metrics::DRY_RUN_WOULD_REJECT);
            host.log(
                Level::Info,
                &format!("dry run: would challenge ({service}): {rejection}"),
            );
            return Verdict::Continue;
        }
        host.log(
            Level::Debug,
            &format!("challenging ({service}): {rejection}"),
        );
        let client_ip = host.client_ip();
        let body = ChallengeRequest {
            service,
            method: line.method,
            path: line.path,
            host: line.authority,
            client_ip: client_ip.as_deref(),
            reason,
        };
        let body = match serde_json::to_vec(&body) {
            Ok(body) => body,
            Err(e) => return self.fail(host, "dispatch", &format!("cannot encode callout: {e}")),
        };
        match host.dispatch(&self.config.invoice_service, body) {
            Ok(token) => {
                self.state = State::AwaitingChallenge {
                    token,
                    service: service.to_string(),
                    grpc: text(headers, "content-type").starts_with("application/grpc"),
                };
                Verdict::Pause
            }
            Err(e) => {
                let cluster = &self.config.invoice_service.cluster;
                self.fail(
                    host,
                    "dispatch",
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
        match callout::interpret(headers, body) {
            Outcome::Challenge {
                challenge,
                amount_msat,
            } => {
                host.count(metrics::CHALLENGED);
                host.send_response(response::challenge(&challenge, &service, amount_msat, grpc));
            }
            Outcome::RateLimited { retry_after } => {
                host.count(metrics::RATE_LIMITED);
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
    fn fail(&self, host: &mut dyn Host, kind: &str, why: &str) -> Verdict {
        host.count(&metrics::callout_error(kind));
        if self.config.fail_open {
            host.count(metrics::FAIL_OPEN);
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

/// The pseudo-headers routing and the callout need, read once per request.
struct RequestLine<'a> {
    path: &'a str,
    method: &'a str,
    authority: &'a str,
}

/// A header as text; empty when absent or not UTF-8 (routing treats both as "no match").
fn text<'a>(headers: &'a Headers, name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
}
