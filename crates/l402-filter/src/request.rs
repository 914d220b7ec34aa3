//! The per-request state machine. Every path ends in exactly one of `Continue` (the request goes
//! on), a local response, or `Pause` followed later by a callout answer that ends in one of those.

use std::borrow::Cow;
use std::sync::Arc;

use l402_core::contract::{
    is_request_id, ChallengeRequest, LeaseRequest, ManifestRequest, LEASE_PATH, MANIFEST_PATH,
    MANIFEST_WELL_KNOWN_PATH, REQUEST_ID_HEADER,
};
use l402_core::credentials::{
    self, is_l402_hex_header_value, without_l402_items, Credential, AUTHORIZATION,
    CREDENTIAL_HEADERS,
};
use l402_core::encoding::to_base64;
use l402_core::verifier::authorize;
use l402_core::{Reason, Rejection, Requirement, TokenId, Verified};

use crate::accept::prefers_html;
use crate::callout::{self, Failure, FailureKind, Outcome};
use crate::canonical::{Refusal, RequestLine};
use crate::config::{Credentials, FilterConfig};
use crate::credential_cache::{self, Authenticated, CredentialCache};
use crate::host::{header, Call, Headers, Host, Level};
use crate::leases::Counted;
use crate::metrics::{Counter, Quota, Requests, Revocations};
use crate::response;
use crate::routing::Decision;
use crate::worker::Worker;

/// Headers we set for the upstream; a client's own copies are removed from every request.
pub const TOKEN_ID_HEADER: &str = "x-l402-token-id";
pub const SERVICE_HEADER: &str = "x-l402-service";
/// For a counted token: about how many of its requests are left after this one. Exact while
/// one worker serves the token; with several, each knows its own block and the pool as it was.
pub const REQUESTS_REMAINING_HEADER: &str = "x-l402-requests-remaining";

const GRPC_CONTENT_TYPE: &str = "content-type";
/// Read only for a challenge (whether to ask for the page), not on the paid path.
const ACCEPT: &str = "accept";

/// Every header the filter reads for every request: the request line's, the credentials',
/// gRPC's content type, and the headers it sets (to remove a client's copies). Nothing else is
/// copied out of the host until a request needs a callout.
pub fn headers_read() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = crate::canonical::HEADERS_READ.to_vec();
        names.extend(CREDENTIAL_HEADERS);
        names.extend([
            GRPC_CONTENT_TYPE,
            TOKEN_ID_HEADER,
            SERVICE_HEADER,
            REQUESTS_REMAINING_HEADER,
        ]);
        names
    })
}

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
        /// The request carried a credential that failed (not none, not a used-up one): with
        /// `challenge.invalid_credential_status: 401` it is answered 401.
        invalid: bool,
        /// Whether `fail_open` may let the request through if no challenge comes.
        fail_open: bool,
    },
    /// A request for the discovery manifest waits for the service's prices.
    AwaitingManifest {
        token: u32,
    },
    /// A counted token's request waits for permission.
    AwaitingLease {
        token: u32,
        pending: PendingLease,
    },
    Done,
}

/// What a request asking for a block needs when the answer comes.
#[derive(Debug, PartialEq, Eq)]
struct PendingLease {
    token_id: TokenId,
    service: String,
    /// The token's `<service>_requests`: blocks serve only the copy they were granted to.
    limit: u64,
    grpc: bool,
    /// The challenge callout's body, sent if the token turns out used up.
    challenge: Vec<u8>,
    /// The request's id, for that challenge callout: the request's headers are read only
    /// while the filter is in them.
    request_id: Option<String>,
    /// The used-up block handed in with the request: if the request fails, the timer gives it
    /// back instead, so the service stops counting it as held elsewhere.
    done: Option<String>,
}

pub struct RequestFilter {
    config: Arc<FilterConfig>,
    worker: Arc<Worker>,
    cache: Option<Arc<CredentialCache>>,
    state: State,
}

impl RequestFilter {
    pub fn new(config: Arc<FilterConfig>, worker: Arc<Worker>) -> Self {
        Self {
            config,
            worker,
            cache: None,
            state: State::Headers,
        }
    }

    /// Authenticated credentials are kept in, and looked up from, `cache` (which must belong
    /// to this request's configuration).
    pub fn with_cache(mut self, cache: Arc<CredentialCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    pub fn on_request_headers(&mut self, host: &mut dyn Host) -> Verdict {
        if std::mem::replace(&mut self.state, State::Done) != State::Headers {
            return Verdict::Continue;
        }
        let headers = host.request_headers(headers_read());
        for name in [TOKEN_ID_HEADER, SERVICE_HEADER, REQUESTS_REMAINING_HEADER] {
            if header(&headers, name).is_some() {
                host.set_request_header(name, None);
            }
        }
        let config = Arc::clone(&self.config);
        if !config.routes.enforces() {
            host.count(Counter::Requests(Requests::Unmatched));
            return Verdict::Continue;
        }
        let grpc =
            header(&headers, GRPC_CONTENT_TYPE).is_some_and(|v| v.starts_with(b"application/grpc"));
        let line = match RequestLine::read(&headers, &config.path_rules) {
            Ok(line) => line,
            Err(refusal) => return self.refuse(host, refusal, grpc),
        };
        if config.manifest.is_some()
            && matches!(line.method(), "GET" | "HEAD")
            && line.path.strict() == MANIFEST_WELL_KNOWN_PATH
        {
            return self.ask_for_manifest(host, &line);
        }
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
        match self.verify(&headers, &req) {
            Ok((authenticated, verified)) => {
                let paid = Paid {
                    headers: &headers,
                    service,
                    line: &line,
                    grpc,
                    credential: &authenticated.credential,
                    verified: &verified,
                };
                self.serve(host, &paid)
            }
            Err(rejection) => self.reject(host, service, &line, grpc, &rejection),
        }
    }

    /// The credential authenticated (from the cache when this worker has seen the same bytes
    /// since the configuration changed) and authorised for this request.
    fn verify(
        &self,
        headers: &Headers,
        req: &Requirement<'_>,
    ) -> Result<(Arc<Authenticated>, Verified), Rejection> {
        let key = self
            .cache
            .as_ref()
            .and_then(|_| credential_cache::key_of(headers));
        let cached = key
            .as_ref()
            .zip(self.cache.as_ref())
            .and_then(|(key, cache)| cache.get(key));
        if let Some(hit) = cached {
            let verified = authorize(&hit.credential, hit.identifier, req)?;
            return Ok((hit, verified));
        }
        let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()));
        let credential = credentials::from_headers(pairs)?;
        let identifier = self.config.verifier.authenticate(&credential)?;
        let verified = authorize(&credential, identifier, req)?;
        let authenticated = Arc::new(Authenticated {
            credential,
            identifier,
        });
        // Counted tokens are kept too: only the authentication is cached, and each of their
        // requests still takes a unit from a block (or asks for one) in `serve`.
        if let (Some(key), Some(cache)) = (key, &self.cache) {
            cache.insert(key, Arc::clone(&authenticated));
        }
        Ok((authenticated, verified))
    }

    /// A token that verified: checked against the shared revocations, then let through, or for
    /// a counted token served from a block or after asking for permission.
    fn serve(&mut self, host: &mut dyn Host, paid: &Paid<'_>) -> Verdict {
        let token_id = paid.verified.identifier.token_id;
        if self.worker.is_revoked(&token_id) != Some(false) {
            return self.reject(
                host,
                paid.service,
                paid.line,
                paid.grpc,
                &Rejection::Revoked,
            );
        }
        let counting = self.config.counting;
        if counting.revocation_sync_ms.is_some() && !self.worker.revocations_synced() {
            // Until the shared list has been read once, any token might be revoked.
            host.count(Counter::Revocations(Revocations::Unsynced));
            return self.unavailable(host, "the shared revocations have not been read yet");
        }
        let Some(limit) = paid.verified.granted.requests else {
            self.forward(host, paid);
            host.count(Counter::Requests(Requests::Allowed));
            return Verdict::Continue;
        };
        if limit == 0 {
            let used_up = Rejection::QuotaExhausted;
            return self.reject(host, paid.service, paid.line, paid.grpc, &used_up);
        }
        let now = host.now_millis();
        let copy = Counted {
            token: token_id,
            service: paid.service,
            limit,
        };
        let from_block = self.worker.leases().and_then(|mut l| l.take(&copy, now));
        self.forward(host, paid);
        if let Some(left) = from_block {
            self.worker.served_from_block();
            self.served(host, left);
            return Verdict::Continue;
        }
        self.ask_for_lease(host, paid, &copy)
    }

    /// A counted token's request goes through: counted, with the estimate of what is left.
    fn served(&self, host: &mut dyn Host, left: u64) {
        host.count(Counter::Requests(Requests::Allowed));
        if self.config.counting.remaining_header {
            let left = left.to_string();
            host.set_request_header(REQUESTS_REMAINING_HEADER, Some(left.as_bytes()));
        }
    }

    fn ask_for_lease(
        &mut self,
        host: &mut dyn Host,
        paid: &Paid<'_>,
        copy: &Counted<'_>,
    ) -> Verdict {
        let credential = paid.credential;
        let token = format!(
            "{}:{}",
            to_base64(&credential.macaroon.encode()),
            hex::encode(credential.preimage)
        );
        let done = self.worker.leases().and_then(|mut l| l.take_used_up(copy));
        let lease = LeaseRequest {
            service: paid.service.into(),
            token: token.into(),
            want: self.config.counting.lease_size,
            done: done.as_deref().map(Into::into),
        };
        let used_up = Rejection::QuotaExhausted;
        let CalloutHeaders { page, request_id } = CalloutHeaders::read(host, paid.grpc);
        let challenge = self.challenge_body(host, paid.service, paid.line, page, &used_up);
        let bodies = serde_json::to_vec(&lease)
            .and_then(|lease| Ok((lease, challenge?)))
            .map_err(|e| format!("cannot encode callout: {e}"));
        let dispatched = bodies.and_then(|(lease, challenge)| {
            let token = self.dispatch(host, LEASE_PATH, lease, request_id.as_deref())?;
            Ok((token, challenge))
        });
        match dispatched {
            Ok((token, challenge)) => {
                let pending = PendingLease {
                    token_id: copy.token,
                    service: paid.service.to_string(),
                    limit: copy.limit,
                    grpc: paid.grpc,
                    challenge,
                    request_id,
                    done,
                };
                self.state = State::AwaitingLease { token, pending };
                Verdict::Pause
            }
            Err(why) => {
                self.hand_back(copy, done);
                self.fail(host, FailureKind::Dispatch, &why, false)
            }
        }
    }

    /// Starts a callout for this request, carrying its id; why not if it cannot be started.
    fn dispatch(
        &self,
        host: &mut dyn Host,
        path: &str,
        body: Vec<u8>,
        request_id: Option<&str>,
    ) -> Result<u32, String> {
        let call = Call {
            method: "POST",
            path,
            body,
            request_id,
        };
        host.dispatch(&self.config.invoice_service, call)
            .map_err(|e| {
                let cluster = &self.config.invoice_service.cluster;
                format!("invoice service cluster `{cluster}` refused the call: {e:?}")
            })
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

    /// The upstream's view of a paid request: credentials as configured, the token id and the
    /// service named.
    fn forward(&self, host: &mut dyn Host, paid: &Paid<'_>) {
        let Paid {
            headers,
            service,
            credential,
            verified,
            ..
        } = *paid;
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
        let invalid = !matches!(rejection.kind(), Reason::Missing | Reason::QuotaExhausted);
        let CalloutHeaders { page, request_id } = CalloutHeaders::read(host, grpc);
        match self.challenge_body(host, service, line, page, rejection) {
            Ok(body) => {
                let ask = AskChallenge {
                    service,
                    grpc,
                    invalid,
                    fail_open: self.config.fail_open,
                    request_id: request_id.as_deref(),
                };
                self.ask_for_challenge(host, body, &ask)
            }
            Err(e) => {
                let why = format!("cannot encode callout: {e}");
                self.fail(host, FailureKind::Dispatch, &why, self.config.fail_open)
            }
        }
    }

    fn challenge_body(
        &self,
        host: &mut dyn Host,
        service: &str,
        line: &RequestLine<'_>,
        page: bool,
        rejection: &Rejection,
    ) -> Result<Vec<u8>, serde_json::Error> {
        let client_ip = host.client_ip();
        // The canonical path: bounded by `max_path_bytes`, and without the query string, which
        // may carry the client's secrets and must not reach the service or its logs.
        let body = ChallengeRequest {
            service: service.into(),
            method: line.method().into(),
            path: line.path.strict().into(),
            client_ip: client_ip.as_deref().map(Into::into),
            reason: Some(rejection.reason().into()),
            host: Some(line.host.as_ref().into()),
            page,
        };
        serde_json::to_vec(&body)
    }

    /// The discovery manifest: the filter's paid routes, priced by the service. Never
    /// challenged and never forwarded, whatever else the request says.
    fn ask_for_manifest(&mut self, host: &mut dyn Host, line: &RequestLine<'_>) -> Verdict {
        let config = Arc::clone(&self.config);
        let request = ManifestRequest {
            host: line.host.as_ref().into(),
            resources: config.manifest.as_deref().unwrap_or_default().into(),
        };
        let id = request_id(&host.request_headers(&[REQUEST_ID_HEADER]));
        let dispatched = serde_json::to_vec(&request)
            .map_err(|e| format!("cannot encode callout: {e}"))
            .and_then(|body| self.dispatch(host, MANIFEST_PATH, body, id.as_deref()));
        match dispatched {
            Ok(token) => {
                self.state = State::AwaitingManifest { token };
                Verdict::Pause
            }
            Err(why) => self.fail(host, FailureKind::Dispatch, &why, false),
        }
    }

    fn ask_for_challenge(
        &mut self,
        host: &mut dyn Host,
        body: Vec<u8>,
        ask: &AskChallenge<'_>,
    ) -> Verdict {
        let path = &self.config.invoice_service.path;
        match self.dispatch(host, path, body, ask.request_id) {
            Ok(token) => {
                self.state = State::AwaitingChallenge {
                    token,
                    service: ask.service.to_string(),
                    grpc: ask.grpc,
                    invalid: ask.invalid,
                    fail_open: ask.fail_open,
                };
                Verdict::Pause
            }
            Err(why) => self.fail(host, FailureKind::Dispatch, &why, ask.fail_open),
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
        let (service, form, fail_open) = match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitingChallenge {
                token: expected,
                service,
                grpc,
                invalid,
                fail_open,
            } if expected == token => (
                service,
                self.config.challenge.form(grpc, invalid),
                fail_open,
            ),
            State::AwaitingManifest { token: expected } if expected == token => {
                match callout::interpret_manifest(headers, body_size, body) {
                    Ok(manifest) => {
                        host.count(Counter::Requests(Requests::Manifest));
                        host.send_response(response::manifest(manifest));
                    }
                    Err(failure) => {
                        let why = format!("no discovery manifest: {}", failure.describe());
                        self.fail(host, failure.kind(), &why, false);
                    }
                }
                return;
            }
            State::AwaitingLease {
                token: expected,
                pending,
            } if expected == token => {
                let answer = callout::interpret_lease(headers, body_size, body);
                let verdict = self.on_lease(host, pending, answer);
                if verdict == Verdict::Continue {
                    host.resume();
                }
                return;
            }
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
                page,
            } => {
                host.count(Counter::Requests(Requests::Challenged));
                let page = page.as_ref().filter(|_| !form.grpc);
                let answer = response::challenge(&challenge, &service, amount_msat, form, page);
                host.send_response(answer);
            }
            Outcome::RateLimited { retry_after } => {
                host.count(Counter::Requests(Requests::RateLimited));
                host.send_response(response::rate_limited(&retry_after));
            }
            Outcome::Failed(failure) => {
                let (kind, why) = (failure.kind(), failure.describe());
                if let Verdict::Continue = self.fail(host, kind, &why, fail_open) {
                    host.resume();
                }
            }
        }
    }

    /// Permission for a counted token's request, or why not.
    fn on_lease(
        &mut self,
        host: &mut dyn Host,
        pending: PendingLease,
        answer: Result<l402_core::contract::LeaseAnswer, Failure>,
    ) -> Verdict {
        let PendingLease {
            token_id,
            service,
            limit,
            grpc,
            challenge,
            request_id,
            done,
        } = pending;
        let copy = Counted {
            token: token_id,
            service: &service,
            limit,
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                self.hand_back(&copy, done);
                // Never `fail_open` here: letting it through could serve more than was paid for.
                host.count(Counter::Quota(Quota::Unavailable));
                let why = format!("no permission for a counted token: {}", failure.describe());
                return self.fail(host, failure.kind(), &why, false);
            }
        };
        if answer.granted > 0 {
            host.count(Counter::Quota(Quota::Leases));
            let now = host.now_millis();
            let left = self
                .worker
                .leases()
                .map_or(answer.remaining, |mut l| l.keep(&copy, &answer, now));
            self.served(host, left);
            return Verdict::Continue;
        }
        if !answer.exhausted() {
            host.count(Counter::Quota(Quota::HeldElsewhere));
            if self.dry_run_lets_through(host, "refuse: requests held elsewhere") {
                return Verdict::Continue;
            }
            let retry_after = self.config.counting.retry_after_seconds();
            host.send_response(response::quota_held_elsewhere(retry_after));
            return Verdict::Pause;
        }
        host.count(Counter::Rejected(l402_core::Reason::QuotaExhausted));
        if self.dry_run_lets_through(host, &format!("challenge ({service}): quota exhausted")) {
            return Verdict::Continue;
        }
        // A used-up token was already let through once per unit: `fail_open` would serve more.
        let ask = AskChallenge {
            service: &service,
            grpc,
            invalid: false,
            fail_open: false,
            request_id: request_id.as_deref(),
        };
        self.ask_for_challenge(host, challenge, &ask)
    }

    /// A used-up block whose hand-in did not reach the service goes to the timer's next returns.
    fn hand_back(&self, copy: &Counted<'_>, done: Option<String>) {
        if let (Some(lease), Some(mut leases)) = (done, self.worker.leases()) {
            leases.keep_used_up(copy, lease);
        }
    }

    /// No challenge or permission could be had: 503, or with `fail_open` (which only unpaid
    /// requests for a challenge may use) let the request through.
    fn fail(&self, host: &mut dyn Host, kind: FailureKind, why: &str, fail_open: bool) -> Verdict {
        host.count(Counter::CalloutError(kind));
        if fail_open {
            host.count(Counter::Requests(Requests::FailOpen));
            host.log(
                Level::Warn,
                &format!("fail_open: letting an unpaid request through: {why}"),
            );
            return Verdict::Continue;
        }
        self.unavailable(host, why)
    }

    /// 503: what the request needs cannot be had now. In a dry run, logged and let through.
    fn unavailable(&self, host: &mut dyn Host, why: &str) -> Verdict {
        if self.dry_run_lets_through(host, &format!("answer 503 ({why})")) {
            return Verdict::Continue;
        }
        host.log(Level::Warn, why);
        host.send_response(response::unavailable(self.config.retry_after_seconds));
        Verdict::Pause
    }
}

/// A challenge callout about to be made, and what its answer is turned into.
struct AskChallenge<'a> {
    service: &'a str,
    grpc: bool,
    /// A credential was presented and failed (see `State::AwaitingChallenge`).
    invalid: bool,
    fail_open: bool,
    request_id: Option<&'a str>,
}

/// What a challenge callout takes from the request's own headers: read in one pass, and only
/// when a callout is made, so the paid path never looks at them.
struct CalloutHeaders {
    /// A browser following a link (HTML preferred) is answered with the payment page.
    page: bool,
    request_id: Option<String>,
}

impl CalloutHeaders {
    fn read(host: &dyn Host, grpc: bool) -> Self {
        let headers = host.request_headers(&[ACCEPT, REQUEST_ID_HEADER]);
        Self {
            page: !grpc && header(&headers, ACCEPT).is_some_and(prefers_html),
            request_id: request_id(&headers),
        }
    }
}

/// The request's id (Envoy's `x-request-id`) if it is one that may be passed on and logged.
fn request_id(headers: &Headers) -> Option<String> {
    let id = header(headers, REQUEST_ID_HEADER).filter(|id| is_request_id(id))?;
    String::from_utf8(id.to_vec()).ok()
}

/// A request whose token verified, and what it was read with.
struct Paid<'a> {
    headers: &'a Headers,
    service: &'a str,
    line: &'a RequestLine<'a>,
    grpc: bool,
    credential: &'a Credential,
    verified: &'a Verified,
}

/// Removes every L402 credential before the request goes upstream, not only the one that was
/// verified: a second token in another header is a credential all the same. `Authorization`
/// lines keep their other schemes (a `Bearer` for the upstream).
fn strip_l402_credentials(host: &mut dyn Host, headers: &Headers) {
    for name in CREDENTIAL_HEADERS {
        // A `Token` that is not hex is the upstream's own and stays, even beside one of ours.
        let (ours, theirs): (Vec<&[u8]>, Vec<&[u8]>) = headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .partition(|v| is_l402_hex_header_value(name, v));
        if !ours.is_empty() {
            host.set_request_header(name, None);
            for value in theirs {
                host.add_request_header(name, value);
            }
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
