//! gRPC transport (tonic): placeholder until the real implementation lands.
