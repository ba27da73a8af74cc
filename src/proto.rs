//! Code generated from `proto/complaint_ledger/v1/*.proto` by build.rs, and
//! the encoded descriptor sets that gRPC reflection serves.

#![allow(clippy::all, missing_docs)]

/// `complaint_ledger.v1`: the public API — events, services, error reasons.
pub mod v1 {
    tonic::include_proto!("complaint_ledger.v1");
}

/// Descriptor set of every file of the API (with its imports), for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/complaint_ledger_descriptor.bin"));

/// Descriptor set of google.rpc's status and error details, for reflection:
/// with it, grpcurl and buf curl decode a refusal's details.
pub const ERROR_DETAILS_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/google_rpc_descriptor.bin"));
