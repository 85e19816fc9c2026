//! The device login's verification URL as a QR code for the terminal, so a phone can open
//! it: two rows of modules per line of text (`▀`, `▄`, `█`, space), with the quiet zone.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// The longest URL drawn: a longer one makes a code too large for a terminal.
const MAX_QR_URL: usize = 300;

/// `url` as a QR code; `None` when it is too long to draw usefully.
pub(crate) fn render(url: &str) -> Option<String> {
    if url.len() > MAX_QR_URL {
        return None;
    }
    let code = QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_draws_as_a_square_of_block_characters_and_a_long_one_not_at_all() {
        let url = "https://as.example/device?user_code=WDJB-MJHT";
        let drawn = render(url).unwrap();
        let lines: Vec<&str> = drawn.lines().collect();
        // The code's modules plus a 4-module quiet zone each side, two rows per line.
        let width = lines[0].chars().count();
        assert_eq!(width, QrCode::new(url).unwrap().width() + 8);
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(drawn.chars().all(|c| " ▀▄█\n".contains(c)), "{drawn}");
        assert!(render(&format!("https://as.example/{}", "a".repeat(400))).is_none());
    }
}
