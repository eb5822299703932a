//! gRPC clients of the five services, over channels made once at start and cloned per call.

use tonic::transport::Channel;

use callmesh_proto::ItemResult;
use callmesh_proto::analysis::v1 as analysis_pb;
use callmesh_proto::analysis::v1::analysis_service_client::AnalysisServiceClient;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::context::v1::context_service_client::ContextServiceClient;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::lead::v1::lead_service_client::LeadServiceClient;
use callmesh_proto::notification::v1 as notification_pb;
use callmesh_proto::notification::v1::notification_service_client::NotificationServiceClient;
use callmesh_proto::telephony::v1 as telephony_pb;
use callmesh_proto::telephony::v1::telephony_service_client::TelephonyServiceClient;
use callmesh_runtime::auth::{MeshChannel, authenticated};
use callmesh_runtime::clients::lazy_channel;
// Recordings and transcripts travel whole in one message.
use callmesh_runtime::grpc::MAX_MESSAGE_BYTES;
use callmesh_runtime::{Component, ConfigError};

use crate::batcher::Batcher;

#[derive(Clone)]
pub struct Clients {
    pub lead: LeadServiceClient<MeshChannel>,
    pub context: ContextServiceClient<MeshChannel>,
    pub analysis: AnalysisServiceClient<MeshChannel>,
    pub telephony: TelephonyServiceClient<MeshChannel>,
    pub notification: NotificationServiceClient<MeshChannel>,
    /// The calls every finished call makes, batched across flows.
    pub batched: Batched,
    pub channels: Vec<(Component, Channel)>,
}

/// The plain clients, before their batchers start.
struct Services {
    lead: LeadServiceClient<MeshChannel>,
    context: ContextServiceClient<MeshChannel>,
    analysis: AnalysisServiceClient<MeshChannel>,
    telephony: TelephonyServiceClient<MeshChannel>,
    notification: NotificationServiceClient<MeshChannel>,
}

/// [`Batcher`]s of the RPCs each finished call makes (see [`crate::batcher`]).
#[derive(Clone)]
pub struct Batched {
    pub find_or_create_lead:
        Batcher<lead_pb::FindOrCreateLeadRequest, lead_pb::FindOrCreateLeadResponse>,
    pub apply_analysis: Batcher<lead_pb::ApplyAnalysisRequest, lead_pb::ApplyAnalysisResponse>,
    pub record_call_outcome:
        Batcher<telephony_pb::RecordCallOutcomeRequest, telephony_pb::RecordCallOutcomeResponse>,
    pub append_transcript:
        Batcher<context_pb::AppendTranscriptRequest, context_pb::AppendTranscriptResponse>,
    pub analyze_conversation:
        Batcher<analysis_pb::AnalyzeConversationRequest, analysis_pb::AnalyzeConversationResponse>,
    pub publish_batch:
        Batcher<notification_pb::PublishBatchRequest, notification_pb::PublishBatchResponse>,
    pub forward_to_crm:
        Batcher<notification_pb::ForwardToCrmRequest, notification_pb::ForwardToCrmResponse>,
}

/// A batcher of `$client`'s `$one` calls, sent as `$batch` calls with request `$request`.
macro_rules! batcher {
    ($client:expr, $one:ident, $batch:ident, $pkg:ident :: $request:ident) => {{
        let (batch, one) = ($client.clone(), $client.clone());
        Batcher::spawn(
            stringify!($one),
            move |items| {
                let mut client = batch.clone();
                async move {
                    let results = client
                        .$batch($pkg::$request { items })
                        .await?
                        .into_inner()
                        .results;
                    Ok(results.into_iter().map(ItemResult::into_result).collect())
                }
            },
            move |request| {
                let mut client = one.clone();
                async move { Ok(client.$one(request).await?.into_inner()) }
            },
        )
    }};
}

impl Batched {
    /// Starts the batchers (needs a Tokio runtime) on the plain clients.
    fn start(clients: &Services) -> Self {
        Batched {
            find_or_create_lead: batcher!(
                clients.lead,
                find_or_create_lead,
                batch_find_or_create_lead,
                lead_pb::BatchFindOrCreateLeadRequest
            ),
            apply_analysis: batcher!(
                clients.lead,
                apply_analysis,
                batch_apply_analysis,
                lead_pb::BatchApplyAnalysisRequest
            ),
            record_call_outcome: batcher!(
                clients.telephony,
                record_call_outcome,
                batch_record_call_outcome,
                telephony_pb::BatchRecordCallOutcomeRequest
            ),
            append_transcript: batcher!(
                clients.context,
                append_transcript,
                batch_append_transcript,
                context_pb::BatchAppendTranscriptRequest
            ),
            analyze_conversation: batcher!(
                clients.analysis,
                analyze_conversation,
                batch_analyze_conversation,
                analysis_pb::BatchAnalyzeConversationRequest
            ),
            publish_batch: batcher!(
                clients.notification,
                publish_batch,
                batch_publish,
                notification_pb::BatchPublishRequest
            ),
            forward_to_crm: batcher!(
                clients.notification,
                forward_to_crm,
                batch_forward_to_crm,
                notification_pb::BatchForwardToCrmRequest
            ),
        }
    }
}

impl Clients {
    pub fn new(urls: &[(Component, String)]) -> Result<Self, ConfigError> {
        let mut channels = Vec::new();
        for (component, url) in urls {
            channels.push((*component, lazy_channel(url, &component.url_var())?));
        }
        let channel = |wanted: Component| {
            channels
                .iter()
                .find(|(c, _)| *c == wanted)
                .map(|(_, ch)| authenticated(ch.clone()))
                .ok_or_else(|| ConfigError::invalid(&wanted.url_var(), "no URL configured"))
        };
        let lead = LeadServiceClient::new(channel(Component::Lead)?);
        let context = ContextServiceClient::new(channel(Component::Context)?)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let analysis = AnalysisServiceClient::new(channel(Component::Analysis)?)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let telephony = TelephonyServiceClient::new(channel(Component::Telephony)?)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let notification = NotificationServiceClient::new(channel(Component::Notification)?);
        let services = Services {
            lead,
            context,
            analysis,
            telephony,
            notification,
        };
        let batched = Batched::start(&services);
        let Services {
            lead,
            context,
            analysis,
            telephony,
            notification,
        } = services;
        Ok(Clients {
            lead,
            context,
            analysis,
            telephony,
            notification,
            batched,
            channels,
        })
    }
}
