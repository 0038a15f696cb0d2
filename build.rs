//! Compiles the public contract with `protox` (pure Rust, so no system `protoc`
//! is needed) and generates the tonic server and client, plus the encoded
//! descriptor set that server reflection serves.

use std::{env, path::PathBuf};

const PROTO_ROOT: &str = "proto";
const PROTOS: &[&str] = &["proto/ktp/v1/ktp.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let fds = protox::compile(PROTOS, [PROTO_ROOT])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("ktp_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // These messages carry personal data: their Debug is written by hand
        // (src/proto.rs) so that a stray `{:?}` cannot print it.
        .skip_debug(["ktp.v1.GetKtpResultResponse"])
        .compile_fds(fds)?;
    Ok(())
}
