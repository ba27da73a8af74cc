//! Compiles the protobuf API with protox (pure Rust, no system `protoc`) and
//! tonic-prost-build, and writes the descriptor set that gRPC reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/complaint_ledger/v1/events.proto",
        "proto/complaint_ledger/v1/ledger.proto",
        "proto/complaint_ledger/v1/cases.proto",
        "proto/complaint_ledger/v1/audit.proto",
        "proto/complaint_ledger/v1/policies.proto",
        "proto/complaint_ledger/v1/privacy.proto",
        "proto/complaint_ledger/v1/ops.proto",
        "proto/complaint_ledger/v1/bench.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("complaint_ledger_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Decoded from a view of the stored pack, the payload stays a view
        // (no copy per record on reads, rebuilds and verification).
        .bytes(".complaint_ledger.v1.StoredRecord.payload")
        .compile_fds(fds)?;
    Ok(())
}
