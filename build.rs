//! Compiles the protobuf API with protox (pure Rust, no system `protoc`) and
//! tonic-prost-build, and writes the descriptor sets that gRPC reflection
//! serves: the API's own, and google.rpc's error details (so clients decode
//! the details of a refusal).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/complaint_ledger/v1/options.proto",
        "proto/complaint_ledger/v1/errors.proto",
        "proto/complaint_ledger/v1/events.proto",
        "proto/complaint_ledger/v1/ledger.proto",
        "proto/complaint_ledger/v1/cases.proto",
        "proto/complaint_ledger/v1/audit.proto",
        "proto/complaint_ledger/v1/policies.proto",
        "proto/complaint_ledger/v1/privacy.proto",
        "proto/complaint_ledger/v1/ops.proto",
    ];
    let rpc = ["google/rpc/status.proto", "google/rpc/error_details.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-changed=third_party/googleapis");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut api = protox::Compiler::new(["proto"])?;
    api.include_source_info(true)
        .include_imports(true)
        .open_files(protos)?;
    // Encoded by the compiler, not from prost's types: those drop the
    // custom options (`personal`) that tools read from reflection.
    std::fs::write(
        out.join("complaint_ledger_descriptor.bin"),
        api.encode_file_descriptor_set(),
    )?;
    let fds = api.file_descriptor_set();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Decoded from a view of the stored pack, the payload stays a view
        // (no copy per record on reads, rebuilds and verification).
        .bytes(".complaint_ledger.v1.StoredRecord.payload")
        .compile_fds(fds)?;

    let rpc_fds = protox::compile(rpc, ["third_party/googleapis"])?;
    std::fs::write(
        out.join("google_rpc_descriptor.bin"),
        prost::Message::encode_to_vec(&rpc_fds),
    )?;

    Ok(())
}
