//! Card images for the submitting RPCs, made on the spot: a real PNG (any
//! size, one bit per pixel, stored deflate blocks, so it stays small and any
//! decoder reads it) and a JPEG header. The gateway reads only an image's
//! header and the sandbox never decodes it, but a real file keeps the tests
//! honest about what a caller sends.

/// The smallest image the gateway accepts: 720×480, as a PNG.
pub fn valid() -> Vec<u8> {
    png(720, 480)
}

/// A complete, decodable PNG of `width`×`height` white pixels (grayscale,
/// 1 bit per pixel).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 1, grayscale, deflate, no filter method, no interlace.
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let row = 1 + (width as usize).div_ceil(8);
    let mut raw = Vec::with_capacity(row * height as usize);
    for _ in 0..height {
        raw.push(0); // filter: none
        raw.extend(std::iter::repeat_n(0xFF, row - 1));
    }
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A JPEG that holds only what a header reader needs: SOI, a JFIF APP0
/// segment, a baseline SOF0 with the dimensions, EOI.
pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
    out.extend_from_slice(b"JFIF\0");
    out.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
    out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// `image` followed by filler bytes up to `len` bytes in all (after the
/// PNG's end, where decoders stop reading). Each whole 3-byte group of the
/// filler encodes to `++//` in base64, so a URL-safe alphabet would show.
pub fn padded(mut image: Vec<u8>, len: usize) -> Vec<u8> {
    const FILLER: [u8; 3] = [0xFB, 0xEF, 0xFF];
    while image.len() < len {
        image.push(FILLER[image.len() % 3]);
    }
    image
}

/// What an image RPC carries as its `image_source`.
#[derive(Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// Neither field set.
    None,
    /// `image`: these bytes.
    File(Vec<u8>),
    /// `image_url`: this text.
    Url(String),
}

/// Never the bytes: a failing assertion must not print an image.
impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("ImageSource::None"),
            Self::File(b) => write!(f, "ImageSource::File({} bytes)", b.len()),
            Self::Url(u) => write!(f, "ImageSource::Url({} bytes)", u.len()),
        }
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).expect("a PNG chunk under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of `data` in stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(usize::from(u16::MAX)).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = u16::try_from(block.len()).expect("a stored block");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_adler_match_their_reference_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        // The IEND chunk's CRC every PNG ends with.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn a_png_holds_its_size_in_the_header_and_ends_with_iend() {
        let png = png(720, 480);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 720);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 480);
        assert!(png.ends_with(&[b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
        // 480 rows of 1 + 90 bytes, stored: small.
        assert!(png.len() < 45_000, "{}", png.len());
    }

    #[test]
    fn a_jpeg_names_its_size_in_sof0() {
        let j = jpeg(1000, 700);
        assert!(j.starts_with(&[0xFF, 0xD8, 0xFF]));
        let sof = j.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        assert_eq!(&j[sof + 5..sof + 9], &[0x02, 0xBC, 0x03, 0xE8]);
    }

    #[test]
    fn padding_reaches_the_length_and_keeps_the_image() {
        let p = padded(png(720, 480), 100_000);
        assert_eq!(p.len(), 100_000);
        assert!(p.starts_with(&png(720, 480)));
    }
}
