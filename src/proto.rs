//! Code generated from `proto/complaint_ledger/v1/*.proto` by build.rs, and
//! the encoded descriptor set that gRPC reflection serves.

#![allow(clippy::all, missing_docs)]

/// `complaint_ledger.v1`: events, the Ledger and the Cases services.
pub mod v1 {
    tonic::include_proto!("complaint_ledger.v1");
}

/// Descriptor set of every file of the API (with its imports), for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/complaint_ledger_descriptor.bin"));
