//! The tonic adapter of the telephony service.

use tonic::{Request, Response, Status};

use callmesh_proto::telephony::v1 as pb;
use callmesh_proto::telephony::v1::telephony_service_server::TelephonyService;
use callmesh_runtime::ServiceError;
use callmesh_runtime::batch;
use callmesh_runtime::errors::{json_object, optional, required};
use callmesh_runtime::timestamps;

use crate::calls::{AudioSource, CallBook, NewRecording};
use crate::model::{Call, CallOutcome, CallRef, CallStatus, Direction, Recording, StatusUpdate};
use crate::outbound::OutboundCall;
use crate::sms::{NewSms, Sms, SmsBook, SmsStatusUpdate};
use crate::sms_status::SmsStatus;

pub struct TelephonyGrpc {
    calls: CallBook,
    sms: SmsBook,
}

impl TelephonyGrpc {
    pub fn new(calls: CallBook, sms: SmsBook) -> Self {
        TelephonyGrpc { calls, sms }
    }
}

/// A caller's idempotency key within its organization: keys are names callers choose (say
/// `order-42-ready`), so another organization's same name is another request.
fn organization_key(organization_id: &str, key: &str) -> String {
    format!("{organization_id}:{key}")
}

#[tonic::async_trait]
impl TelephonyService for TelephonyGrpc {
    async fn record_call_outcome(
        &self,
        request: Request<pb::RecordCallOutcomeRequest>,
    ) -> Result<Response<pb::RecordCallOutcomeResponse>, Status> {
        let (key, outcome) = outcome_request(request.into_inner())?;
        let call = self.calls.record_outcome(&key, outcome).await?;
        Ok(Response::new(pb::RecordCallOutcomeResponse {
            call: Some(call.into()),
        }))
    }

    async fn batch_record_call_outcome(
        &self,
        request: Request<pb::BatchRecordCallOutcomeRequest>,
    ) -> Result<Response<pb::BatchRecordCallOutcomeResponse>, Status> {
        let results = batch::answer(
            request.into_inner().items,
            outcome_request,
            async |outcomes| self.calls.record_outcomes(&outcomes).await,
            |call| pb::RecordCallOutcomeResponse {
                call: Some(call.into()),
            },
        )
        .await?;
        Ok(Response::new(pb::BatchRecordCallOutcomeResponse {
            results,
        }))
    }

    async fn update_call_status(
        &self,
        request: Request<pb::UpdateCallStatusRequest>,
    ) -> Result<Response<pb::UpdateCallStatusResponse>, Status> {
        let pb::UpdateCallStatusRequest {
            idempotency_key,
            call_sid,
            status,
            sequence_number,
            duration_secs,
            answered_by,
            raw_payload_json,
            occurred_at,
            conversation_id,
            reason,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let call = call_ref(call_sid, conversation_id)?;
        let update = StatusUpdate {
            call,
            status: status_from_proto("status", status)?,
            sequence_number,
            duration_secs,
            answered_by,
            reason,
            raw_payload_json: json_object("raw_payload_json", &raw_payload_json)?,
            occurred_at: timestamps::from_proto(occurred_at).unwrap_or_else(chrono::Utc::now),
        };
        let (call, transitioned) = self.calls.update_status(&key, update).await?;
        Ok(Response::new(pb::UpdateCallStatusResponse {
            call: Some(call.into()),
            transitioned,
        }))
    }

    async fn get_call(
        &self,
        request: Request<pb::GetCallRequest>,
    ) -> Result<Response<pb::GetCallResponse>, Status> {
        let pb::GetCallRequest {
            call_id,
            call_sid,
            conversation_id,
        } = request.into_inner();
        let reference = match (
            optional(call_id),
            optional(call_sid),
            optional(conversation_id),
        ) {
            (Some(id), _, _) => CallRef::Id(id),
            (None, Some(sid), _) => CallRef::Sid(sid),
            (None, None, Some(conversation)) => CallRef::Conversation(conversation),
            (None, None, None) => {
                return Err(ServiceError::invalid(
                    "call_id",
                    "one of call_id, call_sid or conversation_id is required",
                )
                .into());
            }
        };
        let call = self.calls.call(&reference).await?;
        Ok(Response::new(pb::GetCallResponse {
            call: Some(call.into()),
        }))
    }

    async fn list_call_status_changes(
        &self,
        request: Request<pb::ListCallStatusChangesRequest>,
    ) -> Result<Response<pb::ListCallStatusChangesResponse>, Status> {
        let pb::ListCallStatusChangesRequest { call_id } = request.into_inner();
        let changes = self
            .calls
            .status_changes(&required("call_id", call_id)?)
            .await?;
        Ok(Response::new(pb::ListCallStatusChangesResponse {
            changes: changes
                .into_iter()
                .map(|c| pb::CallStatusChange {
                    call_id: c.call_id,
                    status: status_to_proto(c.status).into(),
                    sequence_number: c.sequence_number,
                    applied: c.applied,
                    raw_payload_json: c.raw_payload_json,
                    occurred_at: Some(timestamps::to_proto(c.occurred_at)),
                })
                .collect(),
        }))
    }

    async fn record_recording(
        &self,
        request: Request<pb::RecordRecordingRequest>,
    ) -> Result<Response<pb::RecordRecordingResponse>, Status> {
        let pb::RecordRecordingRequest {
            idempotency_key,
            call_sid,
            conversation_id,
            recording_sid,
            source_url,
            audio,
            content_type,
            duration_secs,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let call = call_ref(call_sid, conversation_id)?;
        let source = match (optional(source_url), audio.is_empty()) {
            (Some(url), _) => AudioSource::TwilioUrl(url),
            (None, false) => AudioSource::Bytes(audio),
            (None, true) => {
                return Err(
                    ServiceError::invalid("audio", "audio or a source_url is required").into(),
                );
            }
        };
        let new = NewRecording {
            call,
            recording_sid: optional(recording_sid),
            source,
            content_type: optional(content_type).unwrap_or_else(|| "audio/mpeg".to_owned()),
            duration_secs,
        };
        let (recording, created) = self.calls.record_recording(&key, new).await?;
        Ok(Response::new(pb::RecordRecordingResponse {
            recording: Some(recording.into()),
            created,
        }))
    }

    async fn list_calls(
        &self,
        request: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let pb::ListCallsRequest {
            organization_id,
            lead_id,
            page,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let page = callmesh_runtime::paging::Page::from_proto(page).map_err(ServiceError::from)?;
        let lead_id = optional(lead_id);
        let calls = self
            .calls
            .list(&organization_id, lead_id.as_deref(), &page)
            .await?;
        let next_page_token = page.next_token(calls.iter().map(|c| c.id.as_str()), calls.len());
        Ok(Response::new(pb::ListCallsResponse {
            calls: calls.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn start_outbound_call(
        &self,
        request: Request<pb::StartOutboundCallRequest>,
    ) -> Result<Response<pb::StartOutboundCallResponse>, Status> {
        let pb::StartOutboundCallRequest {
            idempotency_key,
            organization_id,
            lead_id,
            to_number,
            agent_id,
            agent_phone_number_id,
            dynamic_variables,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let key = organization_key(
            &organization_id,
            &required("idempotency_key", idempotency_key)?,
        );
        let request = OutboundCall {
            organization_id,
            lead_id: lead_id.trim().to_owned(),
            to_number: required("to_number", to_number)?,
            agent_id: required("agent_id", agent_id)?,
            agent_phone_number_id: required("agent_phone_number_id", agent_phone_number_id)?,
            dynamic_variables: dynamic_variables.into_iter().collect(),
        };
        let call = self.calls.start_outbound(&key, request).await?;
        Ok(Response::new(pb::StartOutboundCallResponse {
            call: Some(call.into()),
        }))
    }

    async fn redirect_call(
        &self,
        request: Request<pb::RedirectCallRequest>,
    ) -> Result<Response<pb::RedirectCallResponse>, Status> {
        // Giving a call the same instructions twice is harmless.
        let pb::RedirectCallRequest {
            idempotency_key: _,
            call_sid,
            twiml,
        } = request.into_inner();
        let call = self
            .calls
            .redirect(&required("call_sid", call_sid)?, &required("twiml", twiml)?)
            .await?;
        Ok(Response::new(pb::RedirectCallResponse {
            call: Some(call.into()),
        }))
    }

    async fn record_sms(
        &self,
        request: Request<pb::RecordSmsRequest>,
    ) -> Result<Response<pb::RecordSmsResponse>, Status> {
        let pb::RecordSmsRequest {
            idempotency_key,
            organization_id,
            lead_id,
            message_sid,
            direction,
            status,
            from_number,
            to_number,
            body,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let new = NewSms {
            organization_id: required("organization_id", organization_id)?,
            lead_id: lead_id.trim().to_owned(),
            message_sid: optional(message_sid),
            direction: direction_from_proto(direction),
            status: sms_status_from_proto(status).unwrap_or(SmsStatus::Received),
            from_number,
            to_number,
            body,
        };
        let (sms, created) = self.sms.record(&key, new).await?;
        Ok(Response::new(pb::RecordSmsResponse {
            sms: Some(sms.into()),
            created,
        }))
    }

    async fn send_sms(
        &self,
        request: Request<pb::SendSmsRequest>,
    ) -> Result<Response<pb::SendSmsResponse>, Status> {
        let pb::SendSmsRequest {
            idempotency_key,
            organization_id,
            lead_id,
            to_number,
            from_number,
            body,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let key = organization_key(
            &organization_id,
            &required("idempotency_key", idempotency_key)?,
        );
        let new = NewSms {
            organization_id,
            lead_id: lead_id.trim().to_owned(),
            message_sid: None,
            direction: Direction::Outbound,
            status: SmsStatus::Pending,
            from_number: from_number.trim().to_owned(),
            to_number: required("to_number", to_number)?,
            body: required("body", body)?,
        };
        let sms = self.sms.send(&key, new).await?;
        Ok(Response::new(pb::SendSmsResponse {
            sms: Some(sms.into()),
        }))
    }

    async fn update_sms_status(
        &self,
        request: Request<pb::UpdateSmsStatusRequest>,
    ) -> Result<Response<pb::UpdateSmsStatusResponse>, Status> {
        let pb::UpdateSmsStatusRequest {
            idempotency_key,
            message_sid,
            status,
            error_code,
            error_message,
            raw_payload_json,
            occurred_at,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let status = sms_status_from_proto(status)
            .map(|s| s.as_str().to_owned())
            .ok_or_else(|| ServiceError::invalid("status", "must be a message status"))?;
        let update = SmsStatusUpdate {
            message_sid: required("message_sid", message_sid)?,
            status,
            error_code,
            error_message,
            raw_payload_json: json_object("raw_payload_json", &raw_payload_json)?,
            occurred_at: timestamps::from_proto(occurred_at).unwrap_or_else(chrono::Utc::now),
        };
        let (sms, transitioned) = self.sms.update_status(&key, update).await?;
        Ok(Response::new(pb::UpdateSmsStatusResponse {
            sms: Some(sms.into()),
            transitioned,
        }))
    }

    async fn get_sms(
        &self,
        request: Request<pb::GetSmsRequest>,
    ) -> Result<Response<pb::GetSmsResponse>, Status> {
        let pb::GetSmsRequest {
            sms_id,
            message_sid,
        } = request.into_inner();
        let sms = self
            .sms
            .get(
                optional(sms_id).as_deref(),
                optional(message_sid).as_deref(),
            )
            .await?;
        Ok(Response::new(pb::GetSmsResponse {
            sms: Some(sms.into()),
        }))
    }

    async fn list_sms(
        &self,
        request: Request<pb::ListSmsRequest>,
    ) -> Result<Response<pb::ListSmsResponse>, Status> {
        let pb::ListSmsRequest {
            organization_id,
            lead_id,
            page,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let page = callmesh_runtime::paging::Page::from_proto(page).map_err(ServiceError::from)?;
        let lead_id = optional(lead_id);
        let messages = self
            .sms
            .list(&organization_id, lead_id.as_deref(), &page)
            .await?;
        let next_page_token =
            page.next_token(messages.iter().map(|m| m.id.as_str()), messages.len());
        Ok(Response::new(pb::ListSmsResponse {
            messages: messages.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn transcribe_recording(
        &self,
        request: Request<pb::TranscribeRecordingRequest>,
    ) -> Result<Response<pb::TranscribeRecordingResponse>, Status> {
        let pb::TranscribeRecordingRequest { recording_id } = request.into_inner();
        let transcription = self
            .calls
            .transcribe(&required("recording_id", recording_id)?)
            .await?;
        Ok(Response::new(pb::TranscribeRecordingResponse {
            text: transcription.text,
            language_code: transcription.language_code.unwrap_or_default(),
        }))
    }

    async fn list_recordings(
        &self,
        request: Request<pb::ListRecordingsRequest>,
    ) -> Result<Response<pb::ListRecordingsResponse>, Status> {
        let pb::ListRecordingsRequest { call_id } = request.into_inner();
        let recordings = self
            .calls
            .recordings(&required("call_id", call_id)?)
            .await?;
        Ok(Response::new(pb::ListRecordingsResponse {
            recordings: recordings.into_iter().map(Into::into).collect(),
        }))
    }
}

/// The call a request names, by CallSid or, failing that, conversation id.
fn call_ref(call_sid: String, conversation_id: String) -> Result<CallRef, ServiceError> {
    match (optional(call_sid), optional(conversation_id)) {
        (Some(sid), _) => Ok(CallRef::Sid(sid)),
        (None, Some(conversation)) => Ok(CallRef::Conversation(conversation)),
        (None, None) => Err(ServiceError::invalid(
            "call_sid",
            "a call_sid or conversation_id is required",
        )),
    }
}

fn direction_from_proto(value: i32) -> Direction {
    match pb::Direction::try_from(value) {
        Ok(pb::Direction::Inbound) => Direction::Inbound,
        Ok(pb::Direction::Outbound) => Direction::Outbound,
        _ => Direction::Unknown,
    }
}

fn sms_status_from_proto(value: i32) -> Option<SmsStatus> {
    use pb::SmsStatus as S;
    Some(match S::try_from(value).ok()? {
        S::Unspecified => return None,
        S::Accepted => SmsStatus::Accepted,
        S::Scheduled => SmsStatus::Scheduled,
        S::Queued => SmsStatus::Queued,
        S::Sending => SmsStatus::Sending,
        S::Sent => SmsStatus::Sent,
        S::Delivered => SmsStatus::Delivered,
        S::Read => SmsStatus::Read,
        S::Undelivered => SmsStatus::Undelivered,
        S::Failed => SmsStatus::Failed,
        S::Canceled => SmsStatus::Canceled,
        S::Receiving => SmsStatus::Receiving,
        S::Received => SmsStatus::Received,
        S::PartiallyDelivered => SmsStatus::PartiallyDelivered,
    })
}

fn sms_status_to_proto(status: Option<SmsStatus>) -> pb::SmsStatus {
    use pb::SmsStatus as S;
    match status {
        None | Some(SmsStatus::Pending | SmsStatus::NotSent | SmsStatus::Unknown) => S::Unspecified,
        Some(SmsStatus::Accepted) => S::Accepted,
        Some(SmsStatus::Scheduled) => S::Scheduled,
        Some(SmsStatus::Queued) => S::Queued,
        Some(SmsStatus::Sending) => S::Sending,
        Some(SmsStatus::Sent) => S::Sent,
        Some(SmsStatus::Delivered) => S::Delivered,
        Some(SmsStatus::Read) => S::Read,
        Some(SmsStatus::Undelivered) => S::Undelivered,
        Some(SmsStatus::Failed) => S::Failed,
        Some(SmsStatus::Canceled) => S::Canceled,
        Some(SmsStatus::Receiving) => S::Receiving,
        Some(SmsStatus::Received) => S::Received,
        Some(SmsStatus::PartiallyDelivered) => S::PartiallyDelivered,
    }
}

impl From<Sms> for pb::Sms {
    fn from(sms: Sms) -> Self {
        let Sms {
            id,
            organization_id,
            lead_id,
            message_sid,
            direction,
            status,
            from_number,
            to_number,
            body,
            error_code,
            error_message,
            created_at,
            updated_at,
        } = sms;
        let direction = match direction {
            Direction::Unknown => pb::Direction::Unspecified,
            Direction::Inbound => pb::Direction::Inbound,
            Direction::Outbound => pb::Direction::Outbound,
        };
        pb::Sms {
            id,
            organization_id,
            lead_id,
            message_sid: message_sid.unwrap_or_default(),
            direction: direction.into(),
            status: sms_status_to_proto(status).into(),
            from_number,
            to_number,
            body,
            error_code,
            error_message,
            created_at: Some(timestamps::to_proto(created_at)),
            updated_at: Some(timestamps::to_proto(updated_at)),
        }
    }
}

fn status_from_proto(field: &str, value: i32) -> Result<CallStatus, ServiceError> {
    use pb::CallStatus as S;
    Ok(match S::try_from(value) {
        Ok(S::Queued) => CallStatus::Queued,
        Ok(S::Initiated) => CallStatus::Initiated,
        Ok(S::Ringing) => CallStatus::Ringing,
        Ok(S::InProgress) => CallStatus::InProgress,
        Ok(S::Completed) => CallStatus::Completed,
        Ok(S::Busy) => CallStatus::Busy,
        Ok(S::NoAnswer) => CallStatus::NoAnswer,
        Ok(S::Canceled) => CallStatus::Canceled,
        Ok(S::Failed) => CallStatus::Failed,
        Ok(S::Unspecified) | Err(_) => {
            return Err(ServiceError::invalid(field, "must be a call status"));
        }
    })
}

fn status_to_proto(status: CallStatus) -> pb::CallStatus {
    use pb::CallStatus as S;
    match status {
        CallStatus::Pending => S::Unspecified,
        CallStatus::Queued => S::Queued,
        CallStatus::Initiated => S::Initiated,
        CallStatus::Ringing => S::Ringing,
        CallStatus::InProgress => S::InProgress,
        CallStatus::Completed => S::Completed,
        CallStatus::Busy => S::Busy,
        CallStatus::NoAnswer => S::NoAnswer,
        CallStatus::Canceled => S::Canceled,
        CallStatus::Failed => S::Failed,
    }
}

impl From<Call> for pb::Call {
    fn from(call: Call) -> Self {
        let Call {
            id,
            organization_id,
            lead_id,
            conversation_id,
            call_sid,
            agent_id,
            direction,
            status,
            from_number,
            to_number,
            duration_secs,
            cost,
            termination_reason,
            answered_by,
            last_sequence_number,
            started_at,
            ended_at,
            created_at,
            updated_at,
        } = call;
        let direction = match direction {
            Direction::Unknown => pb::Direction::Unspecified,
            Direction::Inbound => pb::Direction::Inbound,
            Direction::Outbound => pb::Direction::Outbound,
        };
        pb::Call {
            id,
            organization_id,
            lead_id,
            conversation_id: conversation_id.unwrap_or_default(),
            call_sid: call_sid.unwrap_or_default(),
            agent_id,
            direction: direction.into(),
            status: status_to_proto(status).into(),
            from_number,
            to_number,
            duration_secs,
            cost,
            termination_reason,
            answered_by,
            last_sequence_number,
            started_at: timestamps::to_proto_opt(started_at),
            ended_at: timestamps::to_proto_opt(ended_at),
            created_at: Some(timestamps::to_proto(created_at)),
            updated_at: Some(timestamps::to_proto(updated_at)),
        }
    }
}

impl From<Recording> for pb::Recording {
    fn from(recording: Recording) -> Self {
        let Recording {
            id,
            call_id,
            recording_sid,
            storage_path,
            content_type,
            duration_secs,
            created_at,
        } = recording;
        pb::Recording {
            id,
            call_id,
            recording_sid: recording_sid.unwrap_or_default(),
            storage_path,
            content_type,
            duration_secs,
            created_at: Some(timestamps::to_proto(created_at)),
        }
    }
}

/// A `RecordCallOutcomeRequest` checked: its key and the outcome.
fn outcome_request(request: pb::RecordCallOutcomeRequest) -> Result<(String, CallOutcome), Status> {
    let pb::RecordCallOutcomeRequest {
        idempotency_key,
        organization_id,
        lead_id,
        conversation_id,
        call_sid,
        agent_id,
        direction,
        status,
        from_number,
        to_number,
        duration_secs,
        cost,
        termination_reason,
        started_at,
        ended_at,
    } = request;
    let key = required("idempotency_key", idempotency_key)?;
    let outcome = CallOutcome {
        organization_id: organization_id.trim().to_owned(),
        lead_id: lead_id.trim().to_owned(),
        conversation_id: optional(conversation_id),
        call_sid: optional(call_sid),
        agent_id: agent_id.trim().to_owned(),
        direction: direction_from_proto(direction),
        status: status_from_proto("status", status)?,
        from_number,
        to_number,
        duration_secs,
        cost,
        termination_reason,
        started_at: timestamps::from_proto(started_at),
        ended_at: timestamps::from_proto(ended_at),
    };
    Ok((key, outcome))
}
