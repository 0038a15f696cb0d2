//! The generated protobuf contract, and the descriptor set served by reflection.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `google.type` messages we import (only `Date`).
pub mod google {
    pub mod r#type {
        tonic::include_proto!("google.r#type");
    }
}

/// `ktp.v1`: the public contract.
pub mod ktp {
    pub mod v1 {
        tonic::include_proto!("ktp.v1");
    }
}

pub use ktp::v1::*;

/// Full names (`/package.Service/Method`) of every RPC in the contract.
pub const KTP_METHODS: &[&str] = include!(concat!(env!("OUT_DIR"), "/ktp_methods.rs"));

/// Encoded `FileDescriptorSet` of `ktp.proto` and everything it imports
/// (with source comments, so `grpcurl describe` shows the API docs).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ktp_descriptor.bin"));

/// Personal data must not reach logs through `{:?}`: only the non-personal
/// fields are shown.
impl std::fmt::Debug for GetKtpResultResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetKtpResultResponse")
            .field("reference_id", &self.reference_id)
            .field("message", &self.message)
            .field("status_code", &self.status_code)
            .field("image_quality", &self.image_quality)
            .finish_non_exhaustive()
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
