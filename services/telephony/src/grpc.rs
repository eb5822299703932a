//! The tonic adapter of the telephony service. Outbound calls, SMS and recording downloads are
//! not built yet and answer UNIMPLEMENTED.

use tonic::{Request, Response, Status};

use callmesh_proto::telephony::v1 as pb;
use callmesh_proto::telephony::v1::telephony_service_server::TelephonyService;
use callmesh_runtime::ServiceError;
use callmesh_runtime::errors::{json_object, optional, required};
use callmesh_runtime::timestamps;

use crate::calls::{CallBook, NewRecording};
use crate::model::{Call, CallOutcome, CallRef, CallStatus, Direction, Recording, StatusUpdate};

pub struct TelephonyGrpc {
    calls: CallBook,
}

impl TelephonyGrpc {
    pub fn new(calls: CallBook) -> Self {
        TelephonyGrpc { calls }
    }
}

#[tonic::async_trait]
impl TelephonyService for TelephonyGrpc {
    async fn record_call_outcome(
        &self,
        request: Request<pb::RecordCallOutcomeRequest>,
    ) -> Result<Response<pb::RecordCallOutcomeResponse>, Status> {
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
        } = request.into_inner();
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
        let call = self.calls.record_outcome(&key, outcome).await?;
        Ok(Response::new(pb::RecordCallOutcomeResponse {
            call: Some(call.into()),
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
        if optional(source_url).is_some() {
            return Err(Status::unimplemented(
                "downloading recordings from source_url is not built yet",
            ));
        }
        if audio.is_empty() {
            return Err(ServiceError::invalid("audio", "is required").into());
        }
        let new = NewRecording {
            call,
            recording_sid: optional(recording_sid),
            audio,
            content_type: optional(content_type).unwrap_or_else(|| "audio/mpeg".to_owned()),
            duration_secs,
        };
        let (recording, created) = self.calls.record_recording(&key, new).await?;
        Ok(Response::new(pb::RecordRecordingResponse {
            recording: Some(recording.into()),
            created,
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
