//! The invoice as a QR code, drawn as one SVG path (a rectangle per run of dark modules, so a
//! long invoice stays a few kilobytes).

use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the code, as scanners expect.
const QUIET_ZONE: usize = 4;

/// `lightning:<INVOICE>` in upper case: BOLT11 is case-insensitive, and upper case fits the QR
/// alphanumeric mode, which makes a smaller code than bytes.
pub fn svg(invoice: &str) -> String {
    let text = format!("LIGHTNING:{}", invoice.to_ascii_uppercase());
    let Ok(code) = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M) else {
        // Longer than any QR code holds: the invoice text below the figure still works.
        return String::from("<p>This invoice is too long for a QR code: copy it instead.</p>");
    };
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let mut path = String::with_capacity(width * width);
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] == Color::Dark {
                let start = x;
                while x < width && row[x] == Color::Dark {
                    x += 1;
                }
                let run = x - start;
                path.push_str(&format!(
                    "M{} {}h{run}v1h-{run}z",
                    start + QUIET_ZONE,
                    y + QUIET_ZONE
                ));
            } else {
                x += 1;
            }
        }
    }
    format!(
        "<svg viewBox=\"0 0 {size} {size}\" role=\"img\" \
         aria-label=\"QR code of the Lightning invoice\" shape-rendering=\"crispEdges\">\
         <path fill=\"#fff\" d=\"M0 0h{size}v{size}H0z\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    )
}
