//! Generated gRPC contracts of the callmesh services.
//!
//! One module per protobuf package (`callmesh.<service>.v1`), plus the encoded descriptor set
//! that every server registers with gRPC reflection.

/// Encoded `FileDescriptorSet` of every callmesh proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/callmesh_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("callmesh.common.v1");
    }
}

pub mod lead {
    pub mod v1 {
        tonic::include_proto!("callmesh.lead.v1");
    }
}

pub mod context {
    pub mod v1 {
        tonic::include_proto!("callmesh.context.v1");
    }
}

pub mod analysis {
    pub mod v1 {
        tonic::include_proto!("callmesh.analysis.v1");
    }
}

pub mod telephony {
    pub mod v1 {
        tonic::include_proto!("callmesh.telephony.v1");
    }
}

pub mod notification {
    pub mod v1 {
        tonic::include_proto!("callmesh.notification.v1");
    }
}

/// Fully qualified gRPC service names, as reflection and health checks know them.
pub mod service_names {
    pub const LEAD: &str = "callmesh.lead.v1.LeadService";
    pub const CONTEXT: &str = "callmesh.context.v1.ContextService";
    pub const ANALYSIS: &str = "callmesh.analysis.v1.AnalysisService";
    pub const TELEPHONY: &str = "callmesh.telephony.v1.TelephonyService";
    pub const NOTIFICATION: &str = "callmesh.notification.v1.NotificationService";
}
