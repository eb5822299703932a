//! gRPC clients of the five services, over channels made once at start and cloned per call.

use tonic::transport::Channel;

use callmesh_proto::analysis::v1::analysis_service_client::AnalysisServiceClient;
use callmesh_proto::context::v1::context_service_client::ContextServiceClient;
use callmesh_proto::lead::v1::lead_service_client::LeadServiceClient;
use callmesh_proto::notification::v1::notification_service_client::NotificationServiceClient;
use callmesh_proto::telephony::v1::telephony_service_client::TelephonyServiceClient;
use callmesh_runtime::auth::{MeshChannel, authenticated};
use callmesh_runtime::clients::lazy_channel;
// Recordings and transcripts travel whole in one message.
use callmesh_runtime::grpc::MAX_MESSAGE_BYTES;
use callmesh_runtime::{Component, ConfigError};

#[derive(Clone)]
pub struct Clients {
    pub lead: LeadServiceClient<MeshChannel>,
    pub context: ContextServiceClient<MeshChannel>,
    pub analysis: AnalysisServiceClient<MeshChannel>,
    pub telephony: TelephonyServiceClient<MeshChannel>,
    pub notification: NotificationServiceClient<MeshChannel>,
    pub channels: Vec<(Component, Channel)>,
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
        Ok(Clients {
            lead: LeadServiceClient::new(channel(Component::Lead)?),
            context: ContextServiceClient::new(channel(Component::Context)?)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            analysis: AnalysisServiceClient::new(channel(Component::Analysis)?)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            telephony: TelephonyServiceClient::new(channel(Component::Telephony)?)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            notification: NotificationServiceClient::new(channel(Component::Notification)?),
            channels,
        })
    }
}
