//! The generated protobuf contract, and the descriptor set served by reflection.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `google.type` messages we import (only `Date`).
pub mod google {
    pub mod r#type {
        tonic::include_proto!("google.r#type");
        // Connect's JSON (`pbjson`, build.rs).
        include!(concat!(env!("OUT_DIR"), "/google.r#type.serde.rs"));
    }
}

/// `ktp.v1`: the public contract.
pub mod ktp {
    pub mod v1 {
        tonic::include_proto!("ktp.v1");
        // Connect's JSON of the answers (`pbjson`, build.rs); requests are
        // read by `connect::json`.
        include!(concat!(env!("OUT_DIR"), "/ktp.v1.serde.rs"));
    }
}

pub use ktp::v1::*;

/// The codec of the generated server and client (`build.rs`): prost's,
/// with a first buffer of [`codec::BUFFER_BYTES`] instead of tonic's 8 KiB.
pub mod codec {
    use std::marker::PhantomData;

    use tonic::codec::{BufferSettings, Codec};
    use tonic_prost::{ProstDecoder, ProstEncoder};

    /// Every call decodes its request into a buffer of this size, grown as
    /// the message needs: most requests (every `GetKtpResult`) are under
    /// 100 bytes, and the 8 KiB tonic starts with were 0.75 KiB of each
    /// waiting call's share of the peak at 10,000 calls arriving at once
    /// (`bench/README.md`, "waiting calls"). An image grows it in a few
    /// doublings, against its own megabytes of copying.
    pub const BUFFER_BYTES: usize = 1024;

    /// [`tonic_prost::ProstCodec`] with smaller buffers.
    #[derive(Debug)]
    pub struct Small<T, U>(PhantomData<fn(T) -> U>);

    impl<T, U> Default for Small<T, U> {
        fn default() -> Self {
            Self(PhantomData)
        }
    }

    /// How much an encoder writes before it yields: tonic's default.
    const YIELD_THRESHOLD: usize = 32 * 1024;

    fn settings() -> BufferSettings {
        BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
    }

    impl<T, U> Codec for Small<T, U>
    where
        T: prost::Message + Send + 'static,
        U: prost::Message + Default + Send + 'static,
    {
        type Encode = T;
        type Decode = U;
        type Encoder = ProstEncoder<T>;
        type Decoder = ProstDecoder<U>;

        fn encoder(&mut self) -> Self::Encoder {
            ProstEncoder::new(settings())
        }

        fn decoder(&mut self) -> Self::Decoder {
            ProstDecoder::new(settings())
        }
    }
}

/// Full names (`/package.Service/Method`) of every RPC in the contract.
pub const KTP_METHODS: &[&str] = include!(concat!(env!("OUT_DIR"), "/ktp_methods.rs"));

/// Largest request message accepted, but by the image-carrying methods: a
/// request is one short string.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// The contract's RPCs, for an edge that dispatches by path itself
/// (Connect's; tonic's generated server does for gRPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KtpMethod {
    GetKtpResult,
    SubmitKtp,
    ExtractKtp,
}

impl KtpMethod {
    /// The RPC at `path` (`/ktp.v1.KtpService/GetKtpResult`).
    pub fn of(path: &str) -> Option<Self> {
        match path.strip_prefix("/ktp.v1.KtpService/")? {
            "GetKtpResult" => Some(Self::GetKtpResult),
            "SubmitKtp" => Some(Self::SubmitKtp),
            "ExtractKtp" => Some(Self::ExtractKtp),
            _ => None,
        }
    }
}

/// Encoded `FileDescriptorSet` of `ktp.proto` and everything it imports
/// (with source comments, so `grpcurl describe` shows the API docs).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ktp_descriptor.bin"));

/// Personal data must not reach logs through `{:?}`: only the non-personal
/// fields are shown, and of the upstream's free text (`message` can echo the
/// card holder) only its length.
impl std::fmt::Debug for GetKtpResultResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetKtpResultResponse")
            .field("reference_id", &self.reference_id)
            .field("message", &TextLen(&self.message))
            .field("status_code", &TextLen(&self.status_code))
            .field("image_quality", &self.image_quality)
            .finish_non_exhaustive()
    }
}

/// The upstream's message, as for the result.
impl std::fmt::Debug for SubmitKtpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitKtpResponse")
            .field("reference_id", &self.reference_id)
            .field("message", &TextLen(&self.message))
            .finish()
    }
}

/// Upstream free text in `Debug`: its length, never its words.
struct TextLen<'a>(&'a str);

impl std::fmt::Debug for TextLen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// The image is personal data (a photo of the card): only its size shows.
macro_rules! redacted_submit_debug {
    ($message:ident, $oneof:ident) => {
        impl std::fmt::Debug for $message {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                use $oneof::ImageSource;
                let image = match &self.image_source {
                    None => "none".to_owned(),
                    Some(ImageSource::Image(b)) => format!("{} bytes", b.len()),
                    Some(ImageSource::ImageUrl(_)) => "a URL".to_owned(),
                };
                f.debug_struct(stringify!($message))
                    .field("image_source", &image)
                    .field("validate_quality", &self.validate_quality)
                    .field("reference_id", &self.reference_id)
                    .finish()
            }
        }
    };
}

redacted_submit_debug!(SubmitKtpRequest, submit_ktp_request);
redacted_submit_debug!(ExtractKtpRequest, extract_ktp_request);

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers reach `{:?}` in logs and panics: they must show no free text
    /// of the upstream (`message`, `status_code`) and no personal field.
    #[test]
    fn debug_of_the_responses_shows_no_upstream_text_and_no_date_of_birth() {
        let result = GetKtpResultResponse {
            reference_id: "R-1".into(),
            message: "extracted for SULISTYONO".into(),
            status_code: "billed to SULISTYONO".into(),
            full_name: "SULISTYONO".into(),
            date_of_birth: "26-02-1966".into(),
            date_of_birth_value: Some(google::r#type::Date {
                year: 1966,
                month: 2,
                day: 26,
            }),
            ..Default::default()
        };
        let submitted = SubmitKtpResponse {
            reference_id: "R-1".into(),
            message: "queued the card of SULISTYONO".into(),
        };
        let extracted = ExtractKtpResponse {
            result: Some(result.clone()),
        };
        for shown in [
            format!("{result:?}"),
            format!("{submitted:?}"),
            format!("{extracted:?}"),
        ] {
            for private in ["SULISTYONO", "26-02-1966", "1966"] {
                assert!(!shown.contains(private), "{private} in {shown}");
            }
            assert!(shown.contains("R-1"), "{shown}");
        }
    }
}
