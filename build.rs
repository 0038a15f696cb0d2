//! Compiles the public contract with `protox` (pure Rust, so no system `protoc`
//! is needed) and generates the tonic server and client, plus the encoded
//! descriptor set that server reflection serves.

use std::{env, path::PathBuf};

const PROTO_ROOT: &str = "proto";
const PROTOS: &[&str] = &["proto/ktp/v1/ktp.proto"];

#[expect(
    clippy::disallowed_macros,
    reason = "a build script talks to cargo on stdout"
)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let fds = protox::compile(PROTOS, [PROTO_ROOT])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // The full name of every RPC of the contract, so the call layer knows
    // which paths are calls worth recording without a list kept by hand.
    let mut methods = String::from("&[");
    for file in &fds.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                methods.push_str(&format!(
                    "\"/{package}.{}/{}\",",
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    methods.push(']');
    std::fs::write(out_dir.join("ktp_methods.rs"), methods)?;
    std::fs::write(
        out_dir.join("ktp_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // These messages carry personal data (a card image is one): their
        // Debug is written by hand
        // (src/proto.rs) so that a stray `{:?}` cannot print it.
        .skip_debug([
            "ktp.v1.GetKtpResultResponse",
            "ktp.v1.SubmitKtpResponse",
            "ktp.v1.SubmitKtpRequest",
            "ktp.v1.ExtractKtpRequest",
        ])
        // Images arrive as `Bytes`: taken from the receive buffer without a
        // copy, and freed as soon as their base64 form exists.
        .bytes(".ktp.v1")
        // Prost with a 1 KiB first buffer, not 8 KiB (src/proto.rs).
        .codec_path("crate::proto::codec::Small")
        .compile_fds(fds)?;

    // Connect's JSON of the answers. Requests are read by hand
    // (src/connect/json.rs): their errors must name fields but never echo
    // values, and a `read_mask` comes in two shapes.
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(out_dir.join("ktp_descriptor.bin"))?)?
        .exclude([
            ".ktp.v1.GetKtpResultRequest",
            ".ktp.v1.SubmitKtpRequest",
            ".ktp.v1.ExtractKtpRequest",
        ])
        .build(&[".ktp.v1", ".google.type"])?;
    Ok(())
}
