//! QR code rendering: real, scannable PNGs (grayscale, 8-bit) without pulling in `image`.

use base64::Engine;
use qrcode::{Color, EcLevel, QrCode};

/// Quiet zone in modules, as the `qrcode` npm package's default `margin: 4`.
const MARGIN: u32 = 4;

/// Render `text` as a PNG. `scale` pixels per module, or, when `width` is set, an image of
/// exactly `width` px (as npm `qrcode` does with its `width` option).
pub(crate) fn png(text: &str, scale: u32, width: Option<u32>) -> Vec<u8> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .expect("urlcode fits in a QR code");
    let modules = code.width() as u32;
    let colors = code.to_colors();
    let total = modules + 2 * MARGIN;
    let size = width.unwrap_or(total * scale).max(total);
    let mut pixels = vec![255u8; (size * size) as usize];
    for py in 0..size {
        let my = (py * total / size) as i64 - MARGIN as i64;
        for px in 0..size {
            let mx = (px * total / size) as i64 - MARGIN as i64;
            if mx >= 0 && my >= 0 && (mx as u32) < modules && (my as u32) < modules {
                let idx = my as usize * modules as usize + mx as usize;
                if colors[idx] == Color::Dark {
                    pixels[(py * size + px) as usize] = 0;
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size, size);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("png header");
        writer.write_image_data(&pixels).expect("png data");
    }
    out
}

/// What `qrcode-session` serves: `scale:5, width:500`.
pub(crate) fn big_png(text: &str) -> Vec<u8> {
    png(text, 5, Some(500))
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
