//! Local image validation, rule by rule.

use super::*;

/// The start of a PNG whose header says `width`×`height`.
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    b
}

/// The start of a baseline JPEG (APP0, then SOF0) of `width`×`height`.
fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    b.extend_from_slice(b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    b.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    b
}

fn file(bytes: Vec<u8>) -> Option<ImageInput> {
    Some(ImageInput::File(Bytes::from(bytes)))
}

fn url(u: &str) -> Option<ImageInput> {
    Some(ImageInput::Url(u.to_owned()))
}

const LIMIT: usize = 5_000_000;

#[test]
fn jpeg_and_png_of_a_card_size_either_way_round_are_accepted() {
    for bytes in [
        png(720, 480),
        png(480, 720),
        png(4000, 3000),
        jpeg(720, 480),
        jpeg(480, 720),
        jpeg(1280, 800),
    ] {
        let parsed = Image::parse(file(bytes.clone()), LIMIT);
        assert_eq!(parsed, Ok(Image::File(Bytes::from(bytes))));
    }
}

#[test]
fn each_rule_has_its_constraint_and_field() {
    for (input, want) in [
        (None, InvalidImage::Required),
        (file(Vec::new()), InvalidImage::Required),
        (url(""), InvalidImage::UrlRequired),
        (file(b"GIF89a rest of a gif".to_vec()), InvalidImage::Format),
        (file(b"not an image at all".to_vec()), InvalidImage::Format),
        // Magic bytes alone, no header to read the size from.
        (file(b"\x89PNG\r\n\x1a\n".to_vec()), InvalidImage::Format),
        (file(vec![0xFF, 0xD8, 0xFF]), InvalidImage::Format),
        (
            file(png(719, 480)),
            InvalidImage::Dimensions {
                width: 719,
                height: 480,
            },
        ),
        (
            file(jpeg(720, 479)),
            InvalidImage::Dimensions {
                width: 720,
                height: 479,
            },
        ),
        (
            file(png(600, 600)),
            InvalidImage::Dimensions {
                width: 600,
                height: 600,
            },
        ),
        (url("http://example.com/ktp.jpg"), InvalidImage::Url),
        (url("https:///ktp.jpg"), InvalidImage::Url),
        (url("/relative/ktp.jpg"), InvalidImage::Url),
        (url("ftp://example.com/ktp.jpg"), InvalidImage::Url),
        (url("not a url"), InvalidImage::Url),
        (
            url(&format!("https://example.com/{}", "a".repeat(2030))),
            InvalidImage::Url,
        ),
    ] {
        let got = Image::parse(input, LIMIT).unwrap_err();
        assert_eq!(got, want);
    }
    let constraint = |e: InvalidImage| (e.constraint(), e.field());
    assert_eq!(constraint(InvalidImage::Required), ("required", "image"));
    assert_eq!(
        constraint(InvalidImage::TooLarge { size: 2, limit: 1 }),
        ("size", "image")
    );
    assert_eq!(constraint(InvalidImage::Format), ("format", "image"));
    assert_eq!(
        constraint(InvalidImage::Dimensions {
            width: 1,
            height: 1
        }),
        ("dimensions", "image")
    );
    assert_eq!(constraint(InvalidImage::Url), ("url", "image_url"));
    // An empty URL is a missing one, on the field the caller chose.
    assert_eq!(
        constraint(InvalidImage::UrlRequired),
        ("required", "image_url")
    );
}

#[test]
fn the_size_limit_counts_bytes_and_comes_first() {
    let mut big = png(800, 600);
    big.resize(101, 0);
    assert_eq!(
        Image::parse(file(big.clone()), 100),
        Err(InvalidImage::TooLarge {
            size: 101,
            limit: 100
        })
    );
    assert!(Image::parse(file(big), 101).is_ok());
    // Over the limit and not an image: the size is what is reported.
    assert!(matches!(
        Image::parse(file(vec![0; 101]), 100),
        Err(InvalidImage::TooLarge { .. })
    ));
}

#[test]
fn urls_are_kept_normalised_and_at_most_2048_bytes() {
    let ok = format!("https://example.com/{}", "a".repeat(2048 - 20));
    assert_eq!(ok.len(), 2048);
    assert_eq!(Image::parse(url(&ok), LIMIT), Ok(Image::Url(ok.clone())));
    assert_eq!(
        Image::parse(url("https://Example.COM/k.jpg?sig=1"), LIMIT),
        Ok(Image::Url("https://example.com/k.jpg?sig=1".into()))
    );
}

#[test]
fn errors_and_debug_never_show_the_url_or_the_bytes() {
    let secret_url = "http://example.com/SECRET-TOKEN/ktp.jpg";
    let err = Image::parse(url(secret_url), LIMIT).unwrap_err();
    assert!(!err.to_string().contains("SECRET"));
    let input = ImageInput::Url("https://example.com/SECRET".into());
    assert!(!format!("{input:?}").contains("SECRET"));
    let image = Image::File(Bytes::from_static(b"SECRET-BYTES"));
    assert!(!format!("{image:?}").contains("SECRET"));
}
