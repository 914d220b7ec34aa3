//! The route table and the one decision made per request.
//!
//! Servers read some paths differently (letter case, a trailing slash, `\`, `;params`, dot
//! segments; see [`crate::canonical`]), and some take the path, host or method from headers
//! (`X-Original-URL`, `X-Forwarded-Host`, `X-HTTP-Method-Override`, `HEAD` served as `GET`). The
//! filter does not guess which server is behind it: it decides the request under every reading,
//! and the most demanding outcome wins. Matching more than the upstream serves costs a client a
//! 402; matching less would give away what is sold.
//! - any reading on a paid route: paid (readings on two paid services: refused, no one token fits;
//!   on one service with different capabilities: all of them are required);
//! - otherwise any reading denied (unmatched with `unmatched: deny`): 404;
//! - otherwise the request passes.
//!
//! An ordinary request (lower-case, no trailing slash, nothing disputed) has one reading and is
//! matched once, in [`Mode::Exact`].

use std::borrow::Cow;

use crate::canonical::{Refusal, RequestLine};
use crate::route::{Mode, Reading, Route, RouteAction};

/// What a request that matches no route gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmatched {
    /// It passes untouched.
    Pass,
    /// 404: the listener serves nothing but its routes.
    Deny,
    /// It is sold like a paid route.
    Paid {
        service: String,
        capabilities: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'c> {
    /// A free route.
    Free,
    /// No route, and unmatched requests pass.
    Unmatched,
    /// No route, and unmatched requests are refused (404).
    Deny,
    Paid {
        service: &'c str,
        capabilities: Cow<'c, [String]>,
    },
    Refuse(Refusal),
}

#[derive(Debug)]
pub struct RouteTable {
    pub routes: Vec<Route>,
    pub unmatched: Unmatched,
    /// Some pattern holds an upper-case letter: folded matching may differ for any path.
    upper_case_patterns: bool,
    /// Patterns without their trailing slash: a path equal to one needs folded matching.
    slash_variants: Vec<String>,
    /// A paid route, a paid default or a deny: something to enforce (decided once, not per
    /// request).
    enforces: bool,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>, unmatched: Unmatched) -> Self {
        let upper_case_patterns = routes.iter().any(|r| !r.strict && r.path.has_upper_case());
        let slash_variants = routes
            .iter()
            .filter(|r| !r.strict)
            .filter_map(|r| r.path.slash_variant())
            .map(str::to_string)
            .collect();
        let enforces = unmatched != Unmatched::Pass
            || routes
                .iter()
                .any(|r| matches!(r.action, RouteAction::Paid { .. }));
        Self {
            routes,
            unmatched,
            upper_case_patterns,
            slash_variants,
            enforces,
        }
    }

    /// Whether the filter has anything to enforce: a paid route, a paid default, or a deny.
    /// A table without any lets every request through, readable or not.
    pub fn enforces(&self) -> bool {
        self.enforces
    }

    pub fn decide(&self, line: &RequestLine<'_>) -> Decision<'_> {
        let modes: &[Mode] = if self.needs_folding(line) {
            &[Mode::Exact, Mode::Folded]
        } else {
            &[Mode::Exact]
        };
        let readings = line.methods.iter().flat_map(|&method| {
            line.hosts().flat_map(move |host| {
                line.path_readings()
                    .map(move |path| Reading { path, host, method })
            })
        });
        let mut paid: Option<(&str, Cow<'_, [String]>)> = None;
        let mut denied = false;
        let mut first: Option<Decision<'_>> = None;
        for reading in readings {
            for &mode in modes {
                match self.outcome(line, reading, mode) {
                    Decision::Paid {
                        service,
                        capabilities,
                    } => match &mut paid {
                        None => paid = Some((service, capabilities)),
                        Some((seen, _)) if *seen != service => {
                            return Decision::Refuse(Refusal::Ambiguous)
                        }
                        Some((_, required)) => {
                            for c in capabilities.iter() {
                                if !required.contains(c) {
                                    required.to_mut().push(c.clone());
                                }
                            }
                        }
                    },
                    Decision::Deny => denied = true,
                    other => {
                        first.get_or_insert(other);
                    }
                }
            }
        }
        match (paid, denied) {
            (Some((service, capabilities)), _) => Decision::Paid {
                service,
                capabilities,
            },
            (None, true) => Decision::Deny,
            (None, false) => first.unwrap_or(Decision::Unmatched),
        }
    }

    /// The decision for one reading: the first matching route's, or the unmatched policy's.
    fn outcome(&self, line: &RequestLine<'_>, reading: Reading<'_>, mode: Mode) -> Decision<'_> {
        let route = self.routes.iter().find(|r| r.matches(line, reading, mode));
        match route.map(|r| &r.action) {
            Some(RouteAction::Free) => Decision::Free,
            Some(RouteAction::Paid {
                service,
                capabilities,
            }) => paid_decision(service, capabilities),
            None => match &self.unmatched {
                Unmatched::Pass => Decision::Unmatched,
                Unmatched::Deny => Decision::Deny,
                Unmatched::Paid {
                    service,
                    capabilities,
                } => paid_decision(service, capabilities),
            },
        }
    }

    /// Folded matching can only differ from exact matching when a letter's case or a trailing
    /// slash is in play.
    fn needs_folding(&self, line: &RequestLine<'_>) -> bool {
        self.upper_case_patterns
            || line.has_upper_case()
            || line.path_readings().any(|p| {
                (p.len() > 1 && p.ends_with('/')) || self.slash_variants.iter().any(|v| v == p)
            })
    }
}

fn paid_decision<'c>(service: &'c str, capabilities: &'c [String]) -> Decision<'c> {
    Decision::Paid {
        service,
        capabilities: Cow::Borrowed(capabilities),
    }
}
