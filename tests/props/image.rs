//! The image validator, `image::Image::parse`: never panics, on any bytes or
//! any URL text, and accepts exactly what the rules allow. Well-formed PNG
//! and JPEG headers of random sizes (with random segments before the size,
//! random trailing bytes, cut at random points) have a known answer: empty
//! is `required`, over the limit `size` (before anything else), no JPEG or
//! PNG magic `format`, a header cut before the size `format`, under 720×480
//! in either orientation `dimensions` with the header's numbers, else
//! accepted, unchanged. Arbitrary bytes (with or without a magic prefix)
//! must at least agree with every rule that can be checked without reading
//! a header. URLs: accepted exactly when `https://`, a host, at most 2,048
//! bytes; the accepted form is still such a URL.

use bytes::Bytes;
use ktp_gateway::{
    error::GatewayError,
    image::{Image, ImageInput, InvalidImage, MAX_URL_LEN, MIN_LONG_SIDE, MIN_SHORT_SIDE},
    status::{Detail, classify},
};
use proptest::{collection, prelude::*};
use tonic::Code;

use super::config;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];

/// A generated header and what it says.
#[derive(Debug, Clone)]
struct Header {
    bytes: Vec<u8>,
    width: usize,
    height: usize,
    /// Bytes needed for the size to be readable.
    size_end: usize,
}

fn side() -> impl Strategy<Value = u16> {
    prop_oneof![
        2 => prop::sample::select(vec![0u16, 1, 479, 480, 481, 719, 720, 721, 4000, u16::MAX]),
        3 => 0u16..=3000,
    ]
}

fn png_header() -> impl Strategy<Value = Header> {
    (side(), side(), collection::vec(any::<u8>(), 0..64)).prop_map(|(w, h, tail)| {
        let mut bytes = PNG_MAGIC.to_vec();
        bytes.extend_from_slice(&13u32.to_be_bytes());
        bytes.extend_from_slice(b"IHDR");
        bytes.extend_from_slice(&u32::from(w).to_be_bytes());
        bytes.extend_from_slice(&u32::from(h).to_be_bytes());
        bytes.extend_from_slice(&[8, 2, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
        bytes.extend_from_slice(&tail);
        Header {
            bytes,
            width: usize::from(w),
            height: usize::from(h),
            size_end: 24,
        }
    })
}

fn jpeg_header() -> impl Strategy<Value = Header> {
    // APPn/COM/DQT segments before the frame header, each with a payload.
    let segment = (
        prop::sample::select(vec![0xE0u8, 0xE1, 0xE2, 0xED, 0xEE, 0xFE, 0xDB, 0xC4]),
        collection::vec(any::<u8>(), 0..40),
    );
    (
        collection::vec(segment, 0..4),
        prop::sample::select(vec![0xC0u8, 0xC1, 0xC2]),
        side(),
        side(),
        collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(|(segments, sof, w, h, tail)| {
            let mut bytes = vec![0xFF, 0xD8];
            for (marker, payload) in segments {
                bytes.extend_from_slice(&[0xFF, marker]);
                let len = u16::try_from(payload.len() + 2).expect("short");
                bytes.extend_from_slice(&len.to_be_bytes());
                bytes.extend_from_slice(&payload);
            }
            bytes.extend_from_slice(&[0xFF, sof, 0x00, 0x11, 0x08]);
            bytes.extend_from_slice(&h.to_be_bytes());
            bytes.extend_from_slice(&w.to_be_bytes());
            let size_end = bytes.len();
            bytes.extend_from_slice(&[0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
            bytes.extend_from_slice(&tail);
            Header {
                bytes,
                width: usize::from(w),
                height: usize::from(h),
                size_end,
            }
        })
}

fn header() -> impl Strategy<Value = Header> {
    prop_oneof![png_header(), jpeg_header()]
}

fn parse_file(bytes: Vec<u8>, max: usize) -> Result<Image, InvalidImage> {
    Image::parse(Some(ImageInput::File(Bytes::from(bytes))), max)
}

fn acceptable(width: usize, height: usize) -> bool {
    width.max(height) >= MIN_LONG_SIDE && width.min(height) >= MIN_SHORT_SIDE
}

/// The rule's row: INVALID_ARGUMENT `INVALID_IMAGE`, its constraint, and a
/// `BadRequest` on the field at fault.
fn check_row(why: InvalidImage) -> Result<(), TestCaseError> {
    let row = classify(&GatewayError::InvalidImage(why));
    prop_assert_eq!(
        (row.code, row.reason.as_str()),
        (Code::InvalidArgument, "INVALID_IMAGE")
    );
    let constraint = row
        .metadata
        .iter()
        .find(|(k, _)| *k == "constraint")
        .map(|(_, v)| v.as_str());
    prop_assert_eq!(constraint, Some(why.constraint()));
    let field = match why {
        InvalidImage::Url | InvalidImage::UrlRequired => "image_url",
        _ => "image",
    };
    prop_assert!(
        matches!(row.detail, Detail::BadRequest { field: f, .. } if f == field),
        "{:?}",
        row.detail
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn a_whole_header_decides_by_its_size(header in header()) {
        let got = parse_file(header.bytes.clone(), 5_000_000);
        if acceptable(header.width, header.height) {
            prop_assert_eq!(got, Ok(Image::File(Bytes::from(header.bytes))));
        } else {
            let want = InvalidImage::Dimensions { width: header.width, height: header.height };
            prop_assert_eq!(got, Err(want));
            check_row(want)?;
        }
    }

    #[test]
    fn a_header_cut_before_its_size_is_not_an_image(
        header in header(),
        at in any::<prop::sample::Index>(),
    ) {
        let cut = at.index(header.size_end);
        let got = parse_file(header.bytes[..cut].to_vec(), 5_000_000);
        let want = if cut == 0 { InvalidImage::Required } else { InvalidImage::Format };
        prop_assert_eq!(got, Err(want));
        check_row(want)?;
    }

    #[test]
    fn size_is_checked_before_the_header(header in header(), under in 1usize..=64) {
        let len = header.bytes.len();
        let max = len.saturating_sub(under).max(1);
        prop_assume!(max < len);
        let want = InvalidImage::TooLarge { size: len, limit: max };
        prop_assert_eq!(parse_file(header.bytes, max), Err(want));
        check_row(want)?;
    }

    #[test]
    fn arbitrary_bytes_agree_with_every_rule_checkable_without_a_header(
        bytes in prop_oneof![
            collection::vec(any::<u8>(), 0..128),
            collection::vec(any::<u8>(), 0..64).prop_map(|b| [PNG_MAGIC, &b].concat()),
            collection::vec(any::<u8>(), 0..64).prop_map(|b| [JPEG_MAGIC, &b].concat()),
        ],
        max in prop_oneof![Just(5_000_000usize), 1usize..=100],
    ) {
        let magic = bytes.starts_with(PNG_MAGIC) || bytes.starts_with(JPEG_MAGIC);
        match parse_file(bytes.clone(), max) {
            Ok(image) => {
                prop_assert!(!bytes.is_empty() && bytes.len() <= max && magic);
                prop_assert_eq!(image, Image::File(Bytes::from(bytes)));
            }
            Err(why) => {
                match why {
                    InvalidImage::Required => prop_assert!(bytes.is_empty()),
                    InvalidImage::TooLarge { size, limit } => {
                        prop_assert!(!bytes.is_empty() && size == bytes.len() && size > max && limit == max);
                    }
                    InvalidImage::Format => prop_assert!(!bytes.is_empty() && bytes.len() <= max),
                    InvalidImage::Dimensions { width, height } => {
                        prop_assert!(magic && !acceptable(width, height));
                    }
                    InvalidImage::Url | InvalidImage::UrlRequired => {
                        prop_assert!(false, "a file cannot have a bad URL")
                    }
                }
                check_row(why)?;
            }
        }
    }
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,20}){0,3}",
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
    ]
}

fn url_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (host(), "(/[A-Za-z0-9._~-]{0,30}){0,4}", prop::option::of("[A-Za-z0-9=&_-]{0,40}"))
            .prop_map(|(h, p, q)| match q {
                Some(q) => format!("https://{h}{p}?{q}"),
                None => format!("https://{h}{p}"),
            }),
        1 => (host(), 2000usize..2100).prop_map(|(h, n)| {
            let head = format!("https://{h}/");
            format!("{head}{}", "a".repeat(n.saturating_sub(head.len())))
        }),
        1 => (prop::sample::select(vec!["http://", "HTTPS://", "https:/", "https:///", "ftp://", "//", "https:\\\\", ""]), host())
            .prop_map(|(scheme, h)| format!("{scheme}{h}/ktp.png")),
        1 => any::<String>(),
        1 => any::<String>().prop_map(|s| format!("https://{s}")),
    ]
}

/// The URL property for one text.
fn check_url(raw: String) -> Result<(), TestCaseError> {
    let got = Image::parse(Some(ImageInput::Url(raw.clone())), 5_000_000);
    let spelled_https = raw
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        && !raw[8..].starts_with(['/', '\\']);
    match got {
        Ok(Image::Url(url)) => {
            prop_assert!(spelled_https && raw.len() <= MAX_URL_LEN, "{:?}", raw);
            let parsed = url::Url::parse(&url).expect("the accepted form parses");
            prop_assert_eq!(parsed.scheme(), "https");
            prop_assert!(parsed.host_str().is_some_and(|h| !h.is_empty()));
            prop_assert!(url.len() <= MAX_URL_LEN);
        }
        Ok(other) => prop_assert!(false, "a URL became {:?}", other),
        Err(why) => {
            let expected = if raw.is_empty() {
                InvalidImage::UrlRequired
            } else {
                InvalidImage::Url
            };
            prop_assert_eq!(why, expected);
            {
                // A plain https URL of a host within the limit must pass.
                let plain = spelled_https
                    && raw.len() <= MAX_URL_LEN
                    && raw.is_ascii()
                    && !raw.contains(['\\', ' ', '%', '@', '#'])
                    && url::Url::parse(&raw).is_ok_and(|u| {
                        u.host_str().is_some_and(|h| !h.is_empty())
                            && u.as_str().len() <= MAX_URL_LEN
                    });
                prop_assert!(!plain, "refused {:?}", raw);
            }
            check_row(why)?;
        }
    }
    Ok(())
}

/// Regressions the properties found, kept as plain tests (see `tests/props.rs`).
#[test]
fn regression_an_empty_url_is_a_url_failure() {
    check_url(String::new()).unwrap_or_else(|e| panic!("{e}"));
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn urls_are_accepted_exactly_when_https_with_a_host_and_short_enough(raw in url_text()) {
        check_url(raw)?;
    }
}
