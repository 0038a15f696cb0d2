//! Connect's JSON: proto3 canonical JSON. Answers are written by the
//! `pbjson` code generated from the contract (lowerCamelCase names, enums
//! by name, defaults left out). Requests are read here, field by field:
//! each field by its JSON name or its proto name, a `read_mask` as the
//! canonical comma-separated string or as the `{"paths": [...]}` object
//! grpcurl users type, and every error names the field at fault but never
//! echoes a value (a request may carry personal data).

use base64::{
    Engine,
    engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig},
};
use bytes::Bytes;
use prost_types::FieldMask;
use serde_json::{Map, Value};

use crate::{
    error::{GatewayError, MalformedRequest, Refusal},
    fields::Field,
    proto::{
        ExtractKtpRequest, GetKtpResultRequest, SubmitKtpRequest, extract_ktp_request,
        submit_ktp_request,
    },
};

/// A request message read from Connect JSON.
pub(super) trait FromJson: Sized {
    /// Reads the message from a request body.
    fn from_json(body: &[u8]) -> Result<Self, GatewayError>;
}

/// The JSON object of a request, each of whose members must be taken.
struct Fields(Map<String, Value>);

impl Fields {
    fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        // Into a `Value` first: serde's type errors quote the value, and a
        // value is not to be echoed. A syntax error names only its place.
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => Ok(Self(members)),
            Ok(_) => Err(not_decodable("the request body is not a JSON object")),
            Err(e) => Err(not_decodable(&format!("the request body is not JSON: {e}"))),
        }
    }

    /// The member named `json` or `proto` (null counts as absent).
    fn take(&mut self, json: &str, proto: &'static str) -> Result<Option<Value>, GatewayError> {
        let by_json = self.0.remove(json).filter(|v| !v.is_null());
        let by_proto = match json == proto {
            true => None,
            false => self.0.remove(proto).filter(|v| !v.is_null()),
        };
        match (by_json, by_proto) {
            (Some(_), Some(_)) => Err(on_field(proto, "set twice (by both of its names)")),
            (one, other) => Ok(one.or(other)),
        }
    }

    fn string(&mut self, json: &str, proto: &'static str) -> Result<String, GatewayError> {
        match self.take(json, proto)? {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(on_field(proto, "must be a JSON string")),
        }
    }

    fn bool(&mut self, json: &str, proto: &'static str) -> Result<bool, GatewayError> {
        match self.take(json, proto)? {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(on_field(proto, "must be true or false")),
        }
    }

    /// Bytes in base64, standard or URL-safe, padded or not.
    fn bytes(&mut self, json: &str, proto: &'static str) -> Result<Option<Bytes>, GatewayError> {
        match self.take(json, proto)? {
            None => Ok(None),
            Some(Value::String(s)) => {
                let url_safe = s.contains(['-', '_']);
                let engine = if url_safe { &URL_SAFE } else { &STANDARD };
                engine
                    .decode(s.trim_end_matches('='))
                    .map(|b| Some(Bytes::from(b)))
                    .map_err(|_| on_field(proto, "must be base64"))
            }
            Some(_) => Err(on_field(proto, "must be a base64 JSON string")),
        }
    }

    fn read_mask(&mut self) -> Result<Option<FieldMask>, GatewayError> {
        let paths: Vec<String> = match self.take("readMask", "read_mask")? {
            None => return Ok(None),
            Some(Value::String(s)) if s.is_empty() => Vec::new(),
            Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            Some(Value::Object(mut object)) => {
                let Some(Value::Array(paths)) = object.remove("paths") else {
                    return Err(on_field("read_mask", MASK_SHAPE));
                };
                if !object.is_empty() {
                    return Err(on_field("read_mask", MASK_SHAPE));
                }
                paths
                    .into_iter()
                    .map(|p| match p {
                        Value::String(s) => Ok(s),
                        _ => Err(on_field("read_mask", MASK_SHAPE)),
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(_) => Err(on_field("read_mask", MASK_SHAPE))?,
        };
        Ok(Some(FieldMask {
            paths: paths.into_iter().map(proto_path).collect(),
        }))
    }

    /// The image source of a submit: `image` or `imageUrl`, not both.
    fn image_source(&mut self) -> Result<Option<Source>, GatewayError> {
        let image = self.bytes("image", "image")?;
        let url = self.take("imageUrl", "image_url")?;
        match (image, url) {
            (Some(_), Some(_)) => Err(on_field(
                "image",
                "image and image_url are both set: set one (oneof image_source)",
            )),
            (Some(image), None) => Ok(Some(Source::Image(image))),
            (None, Some(Value::String(url))) => Ok(Some(Source::Url(url))),
            (None, Some(_)) => Err(on_field("image_url", "must be a JSON string")),
            (None, None) => Ok(None),
        }
    }

    /// The fields a submit shares with an extract: the image source,
    /// `validate_quality`, `reference_id`.
    fn submit(&mut self) -> Result<(Option<Source>, bool, String), GatewayError> {
        Ok((
            self.image_source()?,
            self.bool("validateQuality", "validate_quality")?,
            self.string("referenceId", "reference_id")?,
        ))
    }

    /// Fails on the first member no field took.
    fn done(self) -> Result<(), GatewayError> {
        match self.0.into_iter().next() {
            Some((name, _)) => Err(GatewayError::UnknownJsonField { name }),
            None => Ok(()),
        }
    }
}

const MASK_SHAPE: &str =
    "must be a string of comma-separated paths, or an object {\"paths\": [strings]}";

/// The image source, before it becomes either request's own oneof.
enum Source {
    Image(Bytes),
    Url(String),
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(false)
    .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// A mask path as the answer's fields are named: the proto name when the
/// caller wrote the JSON name (`fullName`), else the path as written, so
/// an unknown path is reported as the caller wrote it.
fn proto_path(path: String) -> String {
    if Field::named(&path).is_some() {
        return path;
    }
    let mut snake = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    match Field::named(&snake) {
        Some(_) => snake,
        None => path,
    }
}

fn not_decodable(message: &str) -> GatewayError {
    GatewayError::Malformed(MalformedRequest {
        kind: Refusal::NotDecodable,
        message: message.to_owned(),
    })
}

fn on_field(field: &'static str, problem: &str) -> GatewayError {
    GatewayError::InvalidJsonField {
        field,
        problem: problem.to_owned(),
    }
}

impl FromJson for GetKtpResultRequest {
    fn from_json(body: &[u8]) -> Result<Self, GatewayError> {
        let mut f = Fields::parse(body)?;
        let request = Self {
            reference_id: f.string("referenceId", "reference_id")?,
            wait: f.bool("wait", "wait")?,
            read_mask: f.read_mask()?,
        };
        f.done()?;
        Ok(request)
    }
}

impl FromJson for SubmitKtpRequest {
    fn from_json(body: &[u8]) -> Result<Self, GatewayError> {
        use submit_ktp_request::ImageSource;
        let mut f = Fields::parse(body)?;
        let (source, validate_quality, reference_id) = f.submit()?;
        f.done()?;
        Ok(Self {
            image_source: source.map(|s| match s {
                Source::Image(b) => ImageSource::Image(b),
                Source::Url(u) => ImageSource::ImageUrl(u),
            }),
            validate_quality,
            reference_id,
        })
    }
}

impl FromJson for ExtractKtpRequest {
    fn from_json(body: &[u8]) -> Result<Self, GatewayError> {
        use extract_ktp_request::ImageSource;
        let mut f = Fields::parse(body)?;
        let (source, validate_quality, reference_id) = f.submit()?;
        let read_mask = f.read_mask()?;
        f.done()?;
        Ok(Self {
            image_source: source.map(|s| match s {
                Source::Image(b) => ImageSource::Image(b),
                Source::Url(u) => ImageSource::ImageUrl(u),
            }),
            validate_quality,
            reference_id,
            read_mask,
        })
    }
}

#[cfg(test)]
mod tests;
