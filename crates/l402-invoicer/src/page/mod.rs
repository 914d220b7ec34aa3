//! The payment page a browser gets instead of the 402's JSON: what is sold, the invoice as a QR
//! code and as text, a browser-wallet (WebLN) button, and `curl` instructions. Rendered here,
//! where the invoice, price and validity are known, so the filter (and its `.wasm`) only relays
//! it. Self-contained: its style and script are inline and allowed by hash alone.

mod qr;
mod time;

use std::sync::LazyLock;

use base64::Engine;
use l402_core::contract::Page;
use sha2::{Digest, Sha256};

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Nothing may load or run but the page's own style and script; the script may fetch only this
/// origin (the retry with the credential).
static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; img-src data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        sha256_source(SCRIPT),
        sha256_source(STYLE)
    )
});

fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// What the page shows.
pub struct Sale<'a> {
    pub service: &'a str,
    pub amount_msat: u64,
    /// Requests the token is good for, for a counted token.
    pub requests: Option<u64>,
    /// Seconds the token stays good after it is bought, if it expires.
    pub valid_for_seconds: Option<i64>,
    pub invoice: &'a str,
    pub macaroon_base64: &'a str,
    /// Unix seconds.
    pub invoice_expires_at: i64,
    /// Where the client asked, for the `curl` line (the script puts the page's own URL there).
    pub host: Option<&'a str>,
    pub path: &'a str,
}

pub fn render(sale: &Sale<'_>) -> Page {
    let url = match sale.host {
        Some(host) => format!("https://{host}{}", sale.path),
        None => sale.path.to_string(),
    };
    let fields: [(&str, String); 11] = [
        ("{{style}}", STYLE.to_string()),
        ("{{script}}", SCRIPT.to_string()),
        ("{{qr}}", qr::svg(sale.invoice)),
        ("{{service}}", escape(sale.service)),
        ("{{price}}", escape(&price(sale.amount_msat))),
        ("{{access}}", escape(&access(sale))),
        ("{{expires_iso}}", time::iso(sale.invoice_expires_at)),
        (
            "{{expires}}",
            escape(&time::readable(sale.invoice_expires_at)),
        ),
        ("{{invoice}}", escape(sale.invoice)),
        ("{{macaroon}}", escape(sale.macaroon_base64)),
        ("{{url}}", escape(&url)),
    ];
    Page {
        html: fill(TEMPLATE, &fields),
        content_security_policy: CONTENT_SECURITY_POLICY.clone(),
    }
}

/// One pass over the template, so a value that happens to contain a placeholder is never
/// expanded again.
fn fill(template: &str, fields: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 8192);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match fields.iter().find(|(name, _)| tail.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &tail[name.len()..];
            }
            None => {
                out.push_str("{{");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `10 sat`, or `2.5 sat` for a price in part-satoshis.
fn price(amount_msat: u64) -> String {
    let (sats, msat) = (amount_msat / 1000, amount_msat % 1000);
    if msat == 0 {
        format!("{sats} sat")
    } else {
        let fraction = format!("{msat:03}");
        format!("{sats}.{} sat", fraction.trim_end_matches('0'))
    }
}

fn access(sale: &Sale<'_>) -> String {
    let lifetime = sale.valid_for_seconds.map(time::duration);
    match (sale.requests, lifetime) {
        (Some(1), Some(l)) => format!("1 request, within {l}"),
        (Some(n), Some(l)) => format!("{n} requests, within {l}"),
        (Some(1), None) => "1 request".into(),
        (Some(n), None) => format!("{n} requests"),
        (None, Some(l)) => format!("unlimited requests for {l}"),
        (None, None) => "unlimited requests, no expiry".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVOICE: &str = "lnbcrt100n1pjexampleinvoice";

    fn sale() -> Sale<'static> {
        Sale {
            service: "weather",
            amount_msat: 10_000,
            requests: None,
            valid_for_seconds: Some(86_400),
            invoice: INVOICE,
            macaroon_base64: "AgEEbHNhdA+/=",
            invoice_expires_at: 1_796_612_400,
            host: Some("api.example"),
            path: "/weather/<today>",
        }
    }

    #[test]
    fn the_page_names_the_sale_and_escapes_what_it_shows() {
        let page = render(&sale()).html;
        assert!(page.contains(r#"<dd id="price">10 sat</dd>"#));
        assert!(page.contains(r#"<dd id="access">unlimited requests for 1 day</dd>"#));
        assert!(page.contains(&format!(
            r#"<code id="invoice" aria-labelledby="invoice-label">{INVOICE}</code>"#
        )));
        assert!(page.contains("https://api.example/weather/&lt;today&gt;"));
        assert!(!page.contains("{{"), "every placeholder is filled");
        assert!(!page.contains("http://") && !page.contains("src=\"http"));
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let page = render(&sale());
        let script = sha256_source(SCRIPT);
        assert!(page
            .content_security_policy
            .starts_with("default-src 'none'"));
        assert!(page
            .content_security_policy
            .contains(&format!("script-src '{script}'")));
        assert!(page.html.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(page.html.contains(&format!("<style>{STYLE}</style>")));
    }

    #[test]
    fn prices_and_counts_read_as_people_say_them() {
        assert_eq!(price(2_500), "2.5 sat");
        assert_eq!(price(1), "0.001 sat");
        assert_eq!(price(100_000), "100 sat");
        let counted = Sale {
            requests: Some(50),
            valid_for_seconds: None,
            ..sale()
        };
        assert_eq!(access(&counted), "50 requests");
    }

    #[test]
    fn a_value_holding_a_placeholder_is_not_expanded() {
        let fields = [("{{a}}", "{{b}}".to_string()), ("{{b}}", "x".to_string())];
        assert_eq!(fill("{{a}} {{b}} {{c}}", &fields), "{{b}} x {{c}}");
    }
}
