//! The tonic adapter of the notification service. Subscribe and CRM forwarding are not built
//! yet and keep the generated UNIMPLEMENTED answer.

use tonic::{Request, Response, Status};

use callmesh_proto::notification::v1 as pb;
use callmesh_proto::notification::v1::notification_service_server::NotificationService;
use callmesh_runtime::ServiceError;
use callmesh_runtime::errors::{json_object, optional, required};
use callmesh_runtime::timestamps;

use crate::log::{Event, EventFilter, EventKind, EventLog, NewEvent};

pub struct NotificationGrpc {
    log: EventLog,
}

impl NotificationGrpc {
    pub fn new(log: EventLog) -> Self {
        NotificationGrpc { log }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationGrpc {
    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let pb::PublishRequest {
            idempotency_key,
            organization_id,
            lead_id,
            r#type,
            payload_json,
            occurred_at,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let event = NewEvent {
            organization_id: required("organization_id", organization_id)?,
            lead_id: lead_id.trim().to_owned(),
            kind: kind_from_proto("type", r#type)?,
            payload_json: json_object("payload_json", &payload_json)?,
            occurred_at: timestamps::from_proto(occurred_at).unwrap_or_else(chrono::Utc::now),
        };
        let (event, created) = self.log.publish(&key, event).await?;
        Ok(Response::new(pb::PublishResponse {
            event: Some(event.into()),
            created,
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let pb::ListEventsRequest {
            filter,
            after_event_id,
            limit,
        } = request.into_inner();
        let filter = filter_from_proto(filter.unwrap_or_default())?;
        let limit = match limit {
            0 => 50,
            1..=500 => limit as u64,
            _ => return Err(ServiceError::invalid("limit", "must be between 1 and 500").into()),
        };
        let events = self.log.list(&filter, after_event_id, limit).await?;
        Ok(Response::new(pb::ListEventsResponse {
            events: events.into_iter().map(Into::into).collect(),
        }))
    }
}

fn filter_from_proto(filter: pb::EventFilter) -> Result<EventFilter, ServiceError> {
    let pb::EventFilter {
        organization_id,
        lead_id,
        types,
    } = filter;
    Ok(EventFilter {
        organization_id: optional(organization_id),
        lead_id: optional(lead_id),
        kinds: types
            .into_iter()
            .enumerate()
            .map(|(i, t)| kind_from_proto(&format!("filter.types[{i}]"), t))
            .collect::<Result<_, _>>()?,
    })
}

pub fn kind_from_proto(field: &str, value: i32) -> Result<EventKind, ServiceError> {
    use pb::EventType as T;
    let kind = match T::try_from(value) {
        Ok(T::CallStarted) => EventKind::CallStarted,
        Ok(T::CallEnded) => EventKind::CallEnded,
        Ok(T::CallStatus) => EventKind::CallStatus,
        Ok(T::CallFailed) => EventKind::CallFailed,
        Ok(T::ConversationEvent) => EventKind::ConversationEvent,
        Ok(T::SmsReceived) => EventKind::SmsReceived,
        Ok(T::SmsSent) => EventKind::SmsSent,
        Ok(T::SmsStatus) => EventKind::SmsStatus,
        Ok(T::RecordingAvailable) => EventKind::RecordingAvailable,
        Ok(T::AnalysisCompleted) => EventKind::AnalysisCompleted,
        Ok(T::LeadUpdated) => EventKind::LeadUpdated,
        Ok(T::HumanTakeover) => EventKind::HumanTakeover,
        Ok(T::HumanReleased) => EventKind::HumanReleased,
        Ok(T::CrmDeliveryFailed) => EventKind::CrmDeliveryFailed,
        Ok(T::Unspecified) | Err(_) => {
            return Err(ServiceError::invalid(
                field,
                format!("unknown event type {value}"),
            ));
        }
    };
    Ok(kind)
}

fn kind_to_proto(kind: EventKind) -> pb::EventType {
    use pb::EventType as T;
    match kind {
        EventKind::CallStarted => T::CallStarted,
        EventKind::CallEnded => T::CallEnded,
        EventKind::CallStatus => T::CallStatus,
        EventKind::CallFailed => T::CallFailed,
        EventKind::ConversationEvent => T::ConversationEvent,
        EventKind::SmsReceived => T::SmsReceived,
        EventKind::SmsSent => T::SmsSent,
        EventKind::SmsStatus => T::SmsStatus,
        EventKind::RecordingAvailable => T::RecordingAvailable,
        EventKind::AnalysisCompleted => T::AnalysisCompleted,
        EventKind::LeadUpdated => T::LeadUpdated,
        EventKind::HumanTakeover => T::HumanTakeover,
        EventKind::HumanReleased => T::HumanReleased,
        EventKind::CrmDeliveryFailed => T::CrmDeliveryFailed,
    }
}

impl From<Event> for pb::Event {
    fn from(event: Event) -> Self {
        let Event {
            id,
            organization_id,
            lead_id,
            kind,
            payload_json,
            occurred_at,
        } = event;
        pb::Event {
            id,
            organization_id,
            lead_id,
            r#type: kind_to_proto(kind).into(),
            payload_json,
            occurred_at: Some(timestamps::to_proto(occurred_at)),
        }
    }
}
