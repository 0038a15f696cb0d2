//! An image worth submitting ("parse, don't validate"): the upstream bills a
//! submit and refuses, later or at once, images that are too large, not JPEG
//! or PNG, or smaller than a cropped card (720×480), so the gateway checks
//! each of those first, from the bytes and the header alone (the image is
//! never decoded). Errors name the rule, never the bytes or the URL.

use bytes::Bytes;
use imagesize::ImageType;

/// The shortest side a KTP photo may have, and the longest side's minimum.
pub const MIN_SHORT_SIDE: usize = 480;
/// See [`MIN_SHORT_SIDE`].
pub const MIN_LONG_SIDE: usize = 720;
/// Longest `image_url` accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// The image as the caller sent it.
#[derive(Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// The file itself.
    File(Bytes),
    /// A URL the upstream fetches.
    Url(String),
}

impl Image {
    /// The request field that carried it: where an upstream's refusal of
    /// the image points.
    pub fn field(&self) -> &'static str {
        match self {
            Self::File(_) => "image",
            Self::Url(_) => "image_url",
        }
    }
}

/// An image that passed local validation.
#[derive(Clone, PartialEq, Eq)]
pub enum Image {
    /// A JPEG or PNG file of an acceptable size and resolution.
    File(Bytes),
    /// An absolute `https://` URL with a host, as parsed (normalised).
    Url(String),
}

/// Why an image was rejected locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidImage {
    /// Neither `image` nor `image_url` was set, or `image` was empty.
    #[error("an image is required: set image (the file) or image_url")]
    Required,
    /// `image_url` was chosen but left empty.
    #[error("image_url is empty: set it to the image's https:// URL, or send the image itself")]
    UrlRequired,
    /// Larger than `submit.max_image_bytes`.
    #[error("image is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// `submit.max_image_bytes`.
        limit: usize,
    },
    /// Not a JPEG or PNG (by its magic bytes), or a header without dimensions.
    #[error("image must be a JPEG or PNG file")]
    Format,
    /// Below 720×480 (either orientation).
    #[error(
        "image is {width}x{height} pixels; a KTP photo needs at least {MIN_LONG_SIDE}x{MIN_SHORT_SIDE}"
    )]
    Dimensions {
        /// Pixels across, from the header.
        width: usize,
        /// Pixels down, from the header.
        height: usize,
    },
    /// Not an absolute `https://` URL with a host of at most 2,048 bytes.
    #[error("image_url must be an absolute https:// URL with a host, at most {MAX_URL_LEN} bytes")]
    Url,
}

impl InvalidImage {
    /// A stable, machine-readable name of the violated rule.
    pub fn constraint(&self) -> &'static str {
        match self {
            Self::Required | Self::UrlRequired => "required",
            Self::TooLarge { .. } => "size",
            Self::Format => "format",
            Self::Dimensions { .. } => "dimensions",
            Self::Url => "url",
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Url | Self::UrlRequired => "image_url",
            _ => "image",
        }
    }
}

impl Image {
    /// Validates `input` (`None`: the caller set neither source).
    pub fn parse(input: Option<ImageInput>, max_bytes: usize) -> Result<Self, InvalidImage> {
        match input {
            None => Err(InvalidImage::Required),
            Some(ImageInput::File(bytes)) => {
                check_file(&bytes, max_bytes)?;
                Ok(Self::File(bytes))
            }
            Some(ImageInput::Url(raw)) if raw.is_empty() => Err(InvalidImage::UrlRequired),
            Some(ImageInput::Url(raw)) => parse_url(&raw).map(Self::Url),
        }
    }
}

fn check_file(bytes: &[u8], max_bytes: usize) -> Result<(), InvalidImage> {
    if bytes.is_empty() {
        return Err(InvalidImage::Required);
    }
    if bytes.len() > max_bytes {
        return Err(InvalidImage::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(JPEG) && !bytes.starts_with(PNG) {
        return Err(InvalidImage::Format);
    }
    // The magic bytes said JPEG or PNG; the header must agree and hold the size.
    match imagesize::image_type(bytes) {
        Ok(ImageType::Jpeg | ImageType::Png) => {}
        _ => return Err(InvalidImage::Format),
    }
    let size = imagesize::blob_size(bytes).map_err(|_| InvalidImage::Format)?;
    let (long, short) = if size.width >= size.height {
        (size.width, size.height)
    } else {
        (size.height, size.width)
    };
    if long < MIN_LONG_SIDE || short < MIN_SHORT_SIDE {
        return Err(InvalidImage::Dimensions {
            width: size.width,
            height: size.height,
        });
    }
    Ok(())
}

fn parse_url(raw: &str) -> Result<String, InvalidImage> {
    if raw.len() > MAX_URL_LEN {
        return Err(InvalidImage::Url);
    }
    // Spelled out as `https://host…`: the URL parser alone would also take
    // `https:///path` (as host `path`) or `https:\\host`.
    let spelled_out = raw
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        && !raw[8..].starts_with(['/', '\\']);
    if !spelled_out {
        return Err(InvalidImage::Url);
    }
    let url = url::Url::parse(raw).map_err(|_| InvalidImage::Url)?;
    let has_host = url.host_str().is_some_and(|h| !h.is_empty());
    if url.scheme() != "https" || !has_host || url.as_str().len() > MAX_URL_LEN {
        return Err(InvalidImage::Url);
    }
    Ok(url.into())
}

/// The bytes and the URL may identify the card holder: never shown.
impl std::fmt::Debug for ImageInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(b) => write!(f, "ImageInput::File({} bytes)", b.len()),
            Self::Url(_) => f.write_str("ImageInput::Url(..)"),
        }
    }
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(b) => write!(f, "Image::File({} bytes)", b.len()),
            Self::Url(_) => f.write_str("Image::Url(..)"),
        }
    }
}

#[cfg(test)]
mod tests;
