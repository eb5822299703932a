//! The lead service reports errors with the mesh's shared `ServiceError`, whose one mapping to
//! gRPC status codes lives in the runtime.

pub type LeadError = callmesh_runtime::ServiceError;
