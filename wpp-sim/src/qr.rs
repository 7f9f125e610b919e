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

/// The `data:` prefix of every QR code the server hands out.
pub(crate) const DATA_URL_PREFIX: &str = "data:image/png;base64,";

/// CRC-32 (ISO-HDLC), as PNG chunks use it.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

/// The smallest data URL `padded_data_url` can make from `png`.
pub(crate) fn min_padded_len(png: &[u8]) -> usize {
    DATA_URL_PREFIX.len() + (png.len() + 12).div_ceil(3) * 4
}

/// `png` as a `data:image/png;base64,` URL of exactly `bytes` bytes: a private ancillary
/// chunk (`wpPd`, skipped by decoders) of filler is inserted before `IEND`, so the image still
/// decodes to the same QR code. `bytes` must be the prefix plus a multiple of 4 (padded
/// base64) and leave room for the chunk.
pub(crate) fn padded_data_url(png: &[u8], bytes: usize) -> Result<String, String> {
    let b64_len = bytes
        .checked_sub(DATA_URL_PREFIX.len())
        .filter(|n| n % 4 == 0)
        .ok_or_else(|| {
            format!(
                "bytes must be {} (the data: prefix) plus a multiple of 4 (base64), got {bytes}",
                DATA_URL_PREFIX.len()
            )
        })?;
    // Unpadded base64: exactly 3 PNG bytes per 4 characters.
    let total = b64_len / 4 * 3;
    let iend = png
        .len()
        .checked_sub(12)
        .filter(|&i| &png[i + 4..i + 8] == b"IEND");
    let Some(iend) = iend else {
        return Err("the QR image does not end with IEND".into());
    };
    let filler_len = total.checked_sub(png.len() + 12).ok_or_else(|| {
        format!(
            "bytes must be at least {}, got {bytes}",
            min_padded_len(png)
        )
    })?;
    let filler = vec![b'.'; filler_len];
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&png[..iend]);
    out.extend_from_slice(&(filler_len as u32).to_be_bytes());
    out.extend_from_slice(b"wpPd");
    out.extend_from_slice(&filler);
    out.extend_from_slice(&crc32(&[b"wpPd", &filler]).to_be_bytes());
    out.extend_from_slice(&png[iend..]);
    debug_assert_eq!(out.len(), total);
    let url = format!("{DATA_URL_PREFIX}{}", b64(&out));
    debug_assert_eq!(url.len(), bytes);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_png_iend_chunk() {
        assert_eq!(crc32(&[b"IEND"]), 0xae42_6082);
    }

    #[test]
    fn padded_urls_have_the_exact_size_and_still_decode() {
        use base64::Engine;
        let png = png("2@hello,world", 4, None);
        let min = min_padded_len(&png);
        for bytes in [min, min + 4, min + 4000, 200_022] {
            let url = padded_data_url(&png, bytes).unwrap();
            assert_eq!(url.len(), bytes);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(url.strip_prefix(DATA_URL_PREFIX).unwrap())
                .unwrap();
            let mut reader = ::png::Decoder::new(raw.as_slice()).read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            reader.next_frame(&mut buf).unwrap();
        }
        assert!(padded_data_url(&png, min - 4).is_err());
        assert!(padded_data_url(&png, min + 1).is_err());
    }
}
