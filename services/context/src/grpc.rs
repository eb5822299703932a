//! The tonic adapter of the context service.

use tonic::{Code, Request, Response, Status};

use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as pb;
use callmesh_proto::context::v1::context_service_server::ContextService;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::lead::v1::lead_service_client::LeadServiceClient;
use callmesh_runtime::ServiceError;
use callmesh_runtime::auth::MeshChannel as GrpcChannel;
use callmesh_runtime::batch;
use callmesh_runtime::durability::nothing_written;
use callmesh_runtime::errors::{json_object, optional, required};
use callmesh_runtime::paging::Page;
use callmesh_runtime::timestamps;

use crate::control::{ControlChange, HumanControl};
use crate::memory::{Memory, Of};
use crate::model::{
    Caller, Channel, ConversationEvent, InitiationData, Message, NewMessage, NewTranscript, Role,
    Turn,
};

pub struct ContextGrpc {
    memory: Memory,
    leads: LeadServiceClient<GrpcChannel>,
    /// Which organization owns a called number, kept a few seconds: a ringing phone need not
    /// ask the lead service (and it its database, twice) every time.
    owners: Option<moka::sync::Cache<String, lead_pb::Organization>>,
}

impl ContextGrpc {
    /// `keep`: how long the owner of a called number is reused (zero: asked every time).
    pub fn new(
        memory: Memory,
        leads: LeadServiceClient<GrpcChannel>,
        keep: std::time::Duration,
    ) -> Self {
        ContextGrpc {
            memory,
            leads,
            owners: callmesh_runtime::cache::expiring(keep),
        }
    }

    /// The organization owning `called_number` (the default organization for a number no
    /// organization owns), from the lead service or, when asked lately, from memory.
    async fn owner(&self, called_number: &str) -> Result<lead_pb::Organization, Status> {
        if let Some(organization) = self.owners.as_ref().and_then(|o| o.get(called_number)) {
            return Ok(organization);
        }
        let organization = self
            .leads
            .clone()
            .resolve_organization(lead_pb::ResolveOrganizationRequest {
                phone_number: called_number.to_owned(),
            })
            .await
            .map_err(|s| upstream("called_number", s))?
            .into_inner()
            .organization
            .ok_or_else(|| Status::internal("lead service answered no organization"))?;
        if let Some(owners) = &self.owners {
            owners.insert(called_number.to_owned(), organization.clone());
        }
        Ok(organization)
    }

    /// Asks the lead service who is calling: the organization owning the called number, and the
    /// lead with the caller's number (created when new).
    async fn caller(&self, caller_number: &str, called_number: &str) -> Result<Caller, Status> {
        let organization = self.owner(called_number).await?;
        let found = self
            .leads
            .clone()
            .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
                idempotency_key: String::new(),
                organization_id: organization.id.clone(),
                phone_number: caller_number.to_owned(),
                name: String::new(),
                email: String::new(),
                source: "inbound_call".to_owned(),
            })
            .await
            .map_err(|s| upstream("caller_number", s))?
            .into_inner();
        let lead = found
            .lead
            .ok_or_else(|| Status::internal("lead service answered no lead"))?;
        Ok(Caller {
            organization_id: organization.id,
            organization_name: organization.name,
            lead_id: lead.id,
            name: lead.name,
            summary: lead.summary,
            existing: !found.created,
        })
    }
}

/// An INVALID_ARGUMENT from the lead service is about one of our fields; anything else is
/// the lead service's trouble.
fn upstream(field: &str, status: Status) -> Status {
    match status.code() {
        Code::InvalidArgument => Status::invalid_argument(format!("{field}: {}", status.message())),
        Code::NotFound => status,
        _ => Status::unavailable(format!("lead service: {}", status.message())),
    }
}

#[tonic::async_trait]
impl ContextService for ContextGrpc {
    async fn append_message(
        &self,
        request: Request<pb::AppendMessageRequest>,
    ) -> Result<Response<pb::AppendMessageResponse>, Status> {
        let pb::AppendMessageRequest {
            idempotency_key,
            organization_id,
            lead_id,
            channel,
            role,
            content,
            conversation_id,
            external_id,
            occurred_at,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let new = NewMessage {
            organization_id: required("organization_id", organization_id)?,
            lead_id: required("lead_id", lead_id)?,
            channel: channel_from_proto("channel", channel)?,
            role: role_from_proto("role", role)?,
            content: required("content", content)?,
            conversation_id,
            external_id,
            occurred_at: timestamps::from_proto(occurred_at).unwrap_or_else(chrono::Utc::now),
        };
        let (message, created) = self.memory.append_message(&key, new).await?;
        Ok(Response::new(pb::AppendMessageResponse {
            message: Some(message.into()),
            created,
        }))
    }

    async fn append_transcript(
        &self,
        request: Request<pb::AppendTranscriptRequest>,
    ) -> Result<Response<pb::AppendTranscriptResponse>, Status> {
        let (key, new) = transcript_request(request.into_inner())?;
        let answer = self.memory.append_transcript(&key, new).await?;
        Ok(Response::new(appended(answer)))
    }

    async fn batch_append_transcript(
        &self,
        request: Request<pb::BatchAppendTranscriptRequest>,
    ) -> Result<Response<pb::BatchAppendTranscriptResponse>, Status> {
        let results = batch::answer(
            request.into_inner().items,
            transcript_request,
            async |transcripts| self.memory.append_transcripts(&transcripts).await,
            appended,
        )
        .await?;
        Ok(Response::new(pb::BatchAppendTranscriptResponse { results }))
    }

    async fn record_conversation_event(
        &self,
        request: Request<pb::RecordConversationEventRequest>,
    ) -> Result<Response<pb::RecordConversationEventResponse>, Status> {
        let pb::RecordConversationEventRequest {
            idempotency_key,
            organization_id,
            lead_id,
            conversation_id,
            event_type,
            data_json,
            occurred_at,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let event = ConversationEvent {
            id: String::new(),
            organization_id: required("organization_id", organization_id)?,
            lead_id: lead_id.trim().to_owned(),
            conversation_id: required("conversation_id", conversation_id)?,
            event_type: required("event_type", event_type)?,
            data_json: json_object("data_json", &data_json)?,
            occurred_at: timestamps::from_proto(occurred_at).unwrap_or_else(chrono::Utc::now),
        };
        let (event, created) = self.memory.record_event(&key, event).await?;
        Ok(Response::new(pb::RecordConversationEventResponse {
            event: Some(event.into()),
            created,
        }))
    }

    async fn build_initiation_data(
        &self,
        request: Request<pb::BuildInitiationDataRequest>,
    ) -> Result<Response<pb::BuildInitiationDataResponse>, Status> {
        let pb::BuildInitiationDataRequest {
            caller_number,
            called_number,
            agent_id,
            call_sid,
        } = request.into_inner();
        let caller_number = required("caller_number", caller_number)?;
        let called_number = required("called_number", called_number)?;
        let caller = self.caller(&caller_number, &called_number).await?;
        let data = self.memory.initiation_data(caller).await?;
        tracing::info!(lead_id = %data.lead_id, %agent_id, %call_sid, caller_type = %data.caller_type, "initiation data built");
        // Context only reads here (the lead service made its own write durable): the phone is
        // ringing, so the answer does not wait for an fsync of this database.
        Ok(nothing_written(Response::new(
            pb::BuildInitiationDataResponse {
                data: Some(data.into()),
            },
        )))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let pb::ListMessagesRequest {
            lead_id,
            page,
            conversation_id,
        } = request.into_inner();
        let page = Page::from_proto(page).map_err(ServiceError::from)?;
        let messages = match (optional(lead_id), optional(conversation_id)) {
            (Some(lead_id), None) => self.memory.messages(Of::Lead(&lead_id), &page).await?,
            (None, Some(conversation_id)) => {
                self.memory
                    .messages(Of::Conversation(&conversation_id), &page)
                    .await?
            }
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid(
                    "conversation_id",
                    "give a lead_id or a conversation_id, not both",
                )
                .into());
            }
            (None, None) => {
                return Err(ServiceError::invalid(
                    "lead_id",
                    "a lead_id or conversation_id is required",
                )
                .into());
            }
        };
        let next_page_token =
            page.next_token(messages.iter().map(|m| m.id.as_str()), messages.len());
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn list_conversation_events(
        &self,
        request: Request<pb::ListConversationEventsRequest>,
    ) -> Result<Response<pb::ListConversationEventsResponse>, Status> {
        let pb::ListConversationEventsRequest {
            conversation_id,
            page,
        } = request.into_inner();
        let conversation_id = required("conversation_id", conversation_id)?;
        let page = Page::from_proto(page).map_err(ServiceError::from)?;
        let events = self.memory.events(&conversation_id, &page).await?;
        let next_page_token = page.next_token(events.iter().map(|e| e.id.as_str()), events.len());
        Ok(Response::new(pb::ListConversationEventsResponse {
            events: events.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn set_human_control(
        &self,
        request: Request<pb::SetHumanControlRequest>,
    ) -> Result<Response<pb::SetHumanControlResponse>, Status> {
        let pb::SetHumanControlRequest {
            idempotency_key,
            organization_id,
            lead_id,
            enabled,
            operator,
            note,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let change = ControlChange {
            organization_id: required("organization_id", organization_id)?,
            lead_id: required("lead_id", lead_id)?,
            enabled,
            operator: operator.trim().to_owned(),
            note,
        };
        let (state, changed) = self.memory.set_human_control(&key, change).await?;
        Ok(Response::new(pb::SetHumanControlResponse {
            state: Some(control_to_proto(state)),
            changed,
        }))
    }

    async fn get_human_control(
        &self,
        request: Request<pb::GetHumanControlRequest>,
    ) -> Result<Response<pb::GetHumanControlResponse>, Status> {
        let pb::GetHumanControlRequest { lead_id } = request.into_inner();
        let state = self
            .memory
            .human_control(&required("lead_id", lead_id)?)
            .await?;
        Ok(Response::new(pb::GetHumanControlResponse {
            state: Some(control_to_proto(state)),
        }))
    }

    async fn get_transcript(
        &self,
        request: Request<pb::GetTranscriptRequest>,
    ) -> Result<Response<pb::GetTranscriptResponse>, Status> {
        let pb::GetTranscriptRequest { conversation_id } = request.into_inner();
        let transcript = self
            .memory
            .transcript(&required("conversation_id", conversation_id)?)
            .await?;
        Ok(Response::new(pb::GetTranscriptResponse {
            transcript: Some(pb::Transcript {
                conversation_id: transcript.conversation_id,
                organization_id: transcript.organization_id,
                lead_id: transcript.lead_id,
                summary: transcript.summary,
                turn_count: i32::try_from(transcript.turn_count).unwrap_or(i32::MAX),
                started_at: timestamps::to_proto_opt(transcript.started_at),
                created_at: Some(timestamps::to_proto(transcript.created_at)),
            }),
        }))
    }
}

fn control_to_proto(state: HumanControl) -> pb::HumanControl {
    let HumanControl {
        lead_id,
        enabled,
        operator,
        note,
        changed_at,
    } = state;
    pb::HumanControl {
        lead_id,
        enabled,
        operator,
        note,
        changed_at: timestamps::to_proto_opt(changed_at),
    }
}

fn channel_from_proto(field: &str, value: i32) -> Result<Channel, ServiceError> {
    match common::Channel::try_from(value) {
        Ok(common::Channel::Voice) => Ok(Channel::Voice),
        Ok(common::Channel::Sms) => Ok(Channel::Sms),
        _ => Err(ServiceError::invalid(field, "must be VOICE or SMS")),
    }
}

fn role_from_proto(field: &str, value: i32) -> Result<Role, ServiceError> {
    match common::Role::try_from(value) {
        Ok(common::Role::User) => Ok(Role::User),
        Ok(common::Role::Agent) => Ok(Role::Agent),
        Ok(common::Role::Operator) => Ok(Role::Operator),
        Ok(common::Role::System) => Ok(Role::System),
        _ => Err(ServiceError::invalid(
            field,
            "must be USER, AGENT, OPERATOR or SYSTEM",
        )),
    }
}

impl From<Message> for pb::Message {
    fn from(message: Message) -> Self {
        let Message {
            id,
            organization_id,
            lead_id,
            channel,
            role,
            content,
            conversation_id,
            external_id,
            occurred_at,
            created_at,
        } = message;
        let channel = match channel {
            Channel::Voice => common::Channel::Voice,
            Channel::Sms => common::Channel::Sms,
        };
        let role = match role {
            Role::User => common::Role::User,
            Role::Agent => common::Role::Agent,
            Role::Operator => common::Role::Operator,
            Role::System => common::Role::System,
        };
        pb::Message {
            id,
            organization_id,
            lead_id,
            channel: channel.into(),
            role: role.into(),
            content,
            conversation_id,
            external_id,
            occurred_at: Some(timestamps::to_proto(occurred_at)),
            created_at: Some(timestamps::to_proto(created_at)),
        }
    }
}

impl From<ConversationEvent> for pb::ConversationEvent {
    fn from(event: ConversationEvent) -> Self {
        let ConversationEvent {
            id,
            organization_id,
            lead_id,
            conversation_id,
            event_type,
            data_json,
            occurred_at,
        } = event;
        pb::ConversationEvent {
            id,
            organization_id,
            lead_id,
            conversation_id,
            event_type,
            data_json,
            occurred_at: Some(timestamps::to_proto(occurred_at)),
        }
    }
}

impl From<InitiationData> for pb::InitiationData {
    fn from(data: InitiationData) -> Self {
        let InitiationData {
            conversation_context,
            customer_name,
            organization_name,
            organization_id,
            lead_status,
            previous_summary,
            caller_type,
            has_conversation_history,
            total_messages,
            lead_id,
        } = data;
        pb::InitiationData {
            conversation_context,
            customer_name,
            organization_name,
            organization_id,
            lead_status,
            previous_summary,
            caller_type,
            has_conversation_history,
            total_messages: i32::try_from(total_messages).unwrap_or(i32::MAX),
            lead_id,
        }
    }
}

/// An `AppendTranscriptRequest` checked: its key and the transcript.
fn transcript_request(
    request: pb::AppendTranscriptRequest,
) -> Result<(String, NewTranscript), Status> {
    let pb::AppendTranscriptRequest {
        idempotency_key,
        organization_id,
        lead_id,
        conversation_id,
        channel,
        turns,
        summary,
        started_at,
    } = request;
    let key = required("idempotency_key", idempotency_key)?;
    let turns = turns
        .into_iter()
        .enumerate()
        .map(|(i, turn)| {
            let common::TranscriptTurn {
                role,
                message,
                time_in_call_secs,
            } = turn;
            Ok(Turn {
                role: role_from_proto(&format!("turns[{i}].role"), role)?,
                message,
                time_in_call_secs,
            })
        })
        .collect::<Result<Vec<_>, ServiceError>>()?;
    let new = NewTranscript {
        organization_id: required("organization_id", organization_id)?,
        lead_id: lead_id.trim().to_owned(),
        conversation_id: required("conversation_id", conversation_id)?,
        channel: channel_from_proto("channel", channel).unwrap_or(Channel::Voice),
        turns,
        summary,
        started_at: timestamps::from_proto(started_at),
    };
    Ok((key, new))
}

fn appended((messages_appended, created): (u32, bool)) -> pb::AppendTranscriptResponse {
    pb::AppendTranscriptResponse {
        messages_appended: i32::try_from(messages_appended).unwrap_or(i32::MAX),
        created,
    }
}
