//! Generated gRPC contracts of the callmesh services.
//!
//! One module per protobuf package (`callmesh.<service>.v1`), plus the encoded descriptor set
//! that every server registers with gRPC reflection.

// A batch item's result is a oneof of a whole response or a small error; it lives only while a
// batch is answered, so boxing the response would buy nothing.
#![allow(clippy::large_enum_variant)]

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

/// One item's answer in a `Batch…` RPC: the response it would have had alone, or the status.
pub trait ItemResult: Sized {
    type Response;

    fn from_result(result: Result<Self::Response, tonic::Status>) -> Self;

    /// The item's answer; a result with neither (from a newer or broken peer) is INTERNAL.
    fn into_result(self) -> Result<Self::Response, tonic::Status>;
}

macro_rules! item_result {
    ($($package:ident :: $result:ident / $oneof:ident => $response:ident),+ $(,)?) => {$(
        impl ItemResult for $package::v1::$result {
            type Response = $package::v1::$response;

            fn from_result(result: Result<Self::Response, tonic::Status>) -> Self {
                use $package::v1::$oneof::Result as Answer;
                Self {
                    result: Some(match result {
                        Ok(response) => Answer::Ok(response),
                        Err(status) => Answer::Error(common::v1::ItemError {
                            code: status.code() as i32,
                            message: status.message().to_owned(),
                        }),
                    }),
                }
            }

            fn into_result(self) -> Result<Self::Response, tonic::Status> {
                use $package::v1::$oneof::Result as Answer;
                match self.result {
                    Some(Answer::Ok(response)) => Ok(response),
                    Some(Answer::Error(error)) => Err(tonic::Status::new(
                        tonic::Code::from_i32(error.code),
                        error.message,
                    )),
                    None => Err(tonic::Status::internal("a batch item was answered with nothing")),
                }
            }
        }
    )+};
}

item_result! {
    lead::FindOrCreateLeadResult / find_or_create_lead_result => FindOrCreateLeadResponse,
    lead::ApplyAnalysisResult / apply_analysis_result => ApplyAnalysisResponse,
    context::AppendTranscriptResult / append_transcript_result => AppendTranscriptResponse,
    analysis::AnalyzeConversationResult / analyze_conversation_result => AnalyzeConversationResponse,
    telephony::RecordCallOutcomeResult / record_call_outcome_result => RecordCallOutcomeResponse,
    notification::PublishBatchResult / publish_batch_result => PublishBatchResponse,
    notification::ForwardToCrmResult / forward_to_crm_result => ForwardToCrmResponse,
}
