//! Whether a request's `Accept` asks for a page rather than data. Only an explicit `text/html`
//! (or XHTML) counts, ranked against what JSON gets: `*/*` (curl, SDKs) keeps the JSON answer
//! programs read, while a browser's navigation (`text/html,…,*/*;q=0.8`) gets the page.

/// `accept` prefers HTML: an explicit `text/html` or `application/xhtml+xml` with a weight
/// above 0 and above JSON's (explicit `application/json`, else `application/*`, else `*/*`).
pub fn prefers_html(accept: &[u8]) -> bool {
    let Ok(accept) = std::str::from_utf8(accept) else {
        return false;
    };
    let (mut html, mut json, mut application, mut any) = (0u16, None, None, None);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let q = parts.find_map(|p| {
            let p = p.trim();
            p.strip_prefix("q=").or(p.strip_prefix("Q="))
        });
        // A weight that is not one makes the range unreadable: it counts for nothing.
        let Some(weight) = q.map_or(Some(1000), weight) else {
            continue;
        };
        let slot = if media.eq_ignore_ascii_case("text/html")
            || media.eq_ignore_ascii_case("application/xhtml+xml")
        {
            html = html.max(weight);
            continue;
        } else if media.eq_ignore_ascii_case("application/json") {
            &mut json
        } else if media.eq_ignore_ascii_case("application/*") {
            &mut application
        } else if media == "*/*" {
            &mut any
        } else {
            continue;
        };
        *slot = Some(slot.unwrap_or(0).max(weight));
    }
    let json = json.or(application).or(any).unwrap_or(0);
    html > 0 && html > json
}

/// A q-value in thousandths (`0.8` → 800); `None` for anything that is not one.
fn weight(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_the_page_and_programs_the_json() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                        image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        for accept in [chromium, firefox, "text/html", "TEXT/HTML;q=0.5"] {
            assert!(prefers_html(accept.as_bytes()), "{accept}");
        }
        for accept in [
            "",
            "*/*",
            "application/json",
            "application/json, text/html;q=0.9",
            "text/html;q=0.8, */*",
            "text/html;q=0",
            "text/*",
            "text/html;q=2",
            "\u{ff}",
        ] {
            assert!(!prefers_html(accept.as_bytes()), "{accept}");
        }
        assert!(!prefers_html(b"text/html;q=0.5, application/*;q=0.5"));
        assert!(!prefers_html(b"\xff\xfe"));
    }
}
