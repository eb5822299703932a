//! The tonic adapter of the notification service.

use tonic::{Request, Response, Status};

use callmesh_proto::notification::v1 as pb;
use callmesh_proto::notification::v1::notification_service_server::NotificationService;
use callmesh_runtime::ServiceError;
use callmesh_runtime::batch;
use callmesh_runtime::errors::{json_object, optional, required};
use callmesh_runtime::timestamps;

use futures_util::StreamExt;

use crate::crm::{CrmDelivery, CrmForwarder, CrmRecord, ForwardRequest};
use crate::log::{Event, EventFilter, EventKind, EventLog, NewEvent};
use crate::subscribe::Delivery;

pub struct NotificationGrpc {
    log: EventLog,
    crm: CrmForwarder,
    /// Ends live streams when the server stops, so graceful shutdown does not wait on them.
    shutdown: tokio_util::sync::CancellationToken,
}

impl NotificationGrpc {
    pub fn new(
        log: EventLog,
        crm: CrmForwarder,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        NotificationGrpc { log, crm, shutdown }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationGrpc {
    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let (key, event) = new_event(request.into_inner())?;
        let kind = event.kind;
        let (event, created) = self.log.publish(&key, event).await?;
        count_published(kind, created);
        Ok(Response::new(pb::PublishResponse {
            event: Some(event.into()),
            created,
        }))
    }

    async fn publish_batch(
        &self,
        request: Request<pb::PublishBatchRequest>,
    ) -> Result<Response<pb::PublishBatchResponse>, Status> {
        let events = batch_events(request.into_inner())?;
        Ok(Response::new(self.publish_events(events).await?))
    }

    async fn batch_publish(
        &self,
        request: Request<pb::BatchPublishRequest>,
    ) -> Result<Response<pb::BatchPublishResponse>, Status> {
        // The log's writer appends concurrent publishes in one transaction.
        let results = batch::answer(
            request.into_inner().items,
            batch_events,
            async |batches| {
                futures_util::future::join_all(
                    batches
                        .into_iter()
                        .map(|events| self.publish_events(events)),
                )
                .await
            },
            |response| response,
        )
        .await?;
        Ok(Response::new(pb::BatchPublishResponse { results }))
    }

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::SubscribeResponse>>, Status> {
        let pb::SubscribeRequest {
            filter,
            after_event_id,
        } = request.into_inner();
        let filter = filter_from_proto(filter.unwrap_or_default())?;
        let deliveries = crate::subscribe::subscribe(
            self.log.clone(),
            filter,
            after_event_id,
            self.shutdown.clone(),
        );
        let stream = tokio_stream::wrappers::ReceiverStream::new(deliveries).map(|delivery| {
            delivery.map(|delivery| pb::SubscribeResponse {
                item: Some(match delivery {
                    Delivery::Event(event) => pb::subscribe_response::Item::Event(event.into()),
                    Delivery::Reset {
                        oldest_available_id,
                    } => pb::subscribe_response::Item::Reset(pb::StreamReset {
                        oldest_available_id,
                        reason: "events after your last id are no longer kept; reload".into(),
                    }),
                }),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn forward_to_crm(
        &self,
        request: Request<pb::ForwardToCrmRequest>,
    ) -> Result<Response<pb::ForwardToCrmResponse>, Status> {
        let request = forward_request(request.into_inner())?;
        let forwarded = self.crm.forward(request).await?;
        Ok(Response::new(forwarded_to_proto(forwarded)))
    }

    async fn batch_forward_to_crm(
        &self,
        request: Request<pb::BatchForwardToCrmRequest>,
    ) -> Result<Response<pb::BatchForwardToCrmResponse>, Status> {
        let results = batch::answer(
            request.into_inner().items,
            |request| Ok(self.crm.delivery_of(forward_request(request)?)?),
            async |deliveries| self.crm.forward_all(deliveries).await,
            forwarded_to_proto,
        )
        .await?;
        Ok(Response::new(pb::BatchForwardToCrmResponse { results }))
    }

    async fn get_crm_delivery(
        &self,
        request: Request<pb::GetCrmDeliveryRequest>,
    ) -> Result<Response<pb::GetCrmDeliveryResponse>, Status> {
        let pb::GetCrmDeliveryRequest {
            delivery_id,
            call_id,
        } = request.into_inner();
        let delivery = match (optional(delivery_id), optional(call_id)) {
            (Some(id), _) => self.crm.by_id(&id).await?,
            (None, Some(call)) => self.crm.by_call(&call).await?,
            (None, None) => {
                return Err(ServiceError::invalid(
                    "delivery_id",
                    "a delivery_id or call_id is required",
                )
                .into());
            }
        };
        Ok(Response::new(pb::GetCrmDeliveryResponse {
            delivery: Some(delivery_to_proto(delivery)),
        }))
    }

    async fn list_crm_deliveries(
        &self,
        request: Request<pb::ListCrmDeliveriesRequest>,
    ) -> Result<Response<pb::ListCrmDeliveriesResponse>, Status> {
        let pb::ListCrmDeliveriesRequest {
            organization_id,
            state,
            limit,
        } = request.into_inner();
        let state = match pb::CrmDeliveryState::try_from(state) {
            Ok(pb::CrmDeliveryState::Unspecified) => None,
            Ok(pb::CrmDeliveryState::Pending) => Some("pending"),
            Ok(pb::CrmDeliveryState::Delivered) => Some("delivered"),
            Ok(pb::CrmDeliveryState::Failed) => Some("failed"),
            Err(_) => return Err(ServiceError::invalid("state", "unknown state").into()),
        };
        let limit = if limit <= 0 {
            50
        } else {
            u64::try_from(limit.min(500)).unwrap_or(50)
        };
        let organization_id = optional(organization_id);
        let deliveries = self
            .crm
            .list(organization_id.as_deref(), state, limit)
            .await?;
        Ok(Response::new(pb::ListCrmDeliveriesResponse {
            deliveries: deliveries.into_iter().map(delivery_to_proto).collect(),
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
            occurred_since,
            newest_first,
        } = request.into_inner();
        let filter = filter_from_proto(filter.unwrap_or_default())?;
        let limit = match limit {
            0 => 50,
            1..=500 => limit as u64,
            _ => return Err(ServiceError::invalid("limit", "must be between 1 and 500").into()),
        };
        let since = callmesh_runtime::timestamps::from_proto(occurred_since);
        let events = match since {
            _ if newest_first => {
                self.log
                    .list_newest(&filter, after_event_id, since, limit)
                    .await?
            }
            Some(since) => {
                self.log
                    .list_occurred_since(&filter, after_event_id, since, limit)
                    .await?
            }
            None => self.log.list(&filter, after_event_id, limit).await?,
        };
        let oldest_available_id = if after_event_id > 0 {
            self.log.oldest_id().await?
        } else {
            0
        };
        Ok(Response::new(pb::ListEventsResponse {
            events: events.into_iter().map(Into::into).collect(),
            oldest_available_id,
        }))
    }
}

fn delivery_to_proto(delivery: CrmDelivery) -> pb::CrmDelivery {
    let CrmDelivery {
        id,
        organization_id,
        lead_id,
        call_id,
        state,
        record,
        webhook_url: _,
        attempts,
        next_attempt_at,
        created_at,
    } = delivery;
    let state = match state.as_str() {
        "pending" => pb::CrmDeliveryState::Pending,
        "delivered" => pb::CrmDeliveryState::Delivered,
        "failed" => pb::CrmDeliveryState::Failed,
        _ => pb::CrmDeliveryState::Unspecified,
    };
    pb::CrmDelivery {
        id,
        organization_id,
        lead_id,
        call_id,
        state: state.into(),
        record: Some(pb::CrmRecord {
            subject: record.subject,
            to: record.to,
            name: record.name,
            summary: record.summary,
            status: record.status,
            duration_secs: record.duration,
        }),
        attempts: attempts
            .into_iter()
            .map(|a| pb::CrmAttempt {
                attempt: i32::try_from(a.attempt).unwrap_or(i32::MAX),
                http_status: i32::from(a.http_status),
                error: a.error,
                attempted_at: Some(timestamps::to_proto(a.attempted_at)),
            })
            .collect(),
        next_attempt_at: timestamps::to_proto_opt(next_attempt_at),
        created_at: Some(timestamps::to_proto(created_at)),
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

/// Most events one `PublishBatch` takes.
const MAX_PUBLISH_BATCH: usize = 100;

/// A `PublishRequest` checked: its key and the event to append.
fn new_event(request: pb::PublishRequest) -> Result<(String, NewEvent), Status> {
    let pb::PublishRequest {
        idempotency_key,
        organization_id,
        lead_id,
        r#type,
        payload_json,
        occurred_at,
    } = request;
    let key = required("idempotency_key", idempotency_key)?;
    let event = NewEvent {
        organization_id: required("organization_id", organization_id)?,
        lead_id: lead_id.trim().to_owned(),
        kind: kind_from_proto("type", r#type)?,
        payload_json: json_object("payload_json", &payload_json)?,
        occurred_at: timestamps::from_proto(occurred_at).unwrap_or_else(chrono::Utc::now),
    };
    Ok((key, event))
}

impl NotificationGrpc {
    /// Appends one batch's events and counts the new ones.
    async fn publish_events(
        &self,
        events: Vec<(String, NewEvent)>,
    ) -> Result<pb::PublishBatchResponse, Status> {
        let kinds: Vec<EventKind> = events.iter().map(|(_, event)| event.kind).collect();
        let published = self.log.publish_all(events).await?;
        let results = published
            .into_iter()
            .zip(kinds)
            .map(|((event, created), kind)| {
                count_published(kind, created);
                pb::PublishResponse {
                    event: Some(event.into()),
                    created,
                }
            })
            .collect();
        Ok(pb::PublishBatchResponse { results })
    }
}

/// A `PublishBatchRequest`'s events, every one checked before any is appended: a bad one
/// refuses the whole batch.
fn batch_events(request: pb::PublishBatchRequest) -> Result<Vec<(String, NewEvent)>, Status> {
    let requested = request.events;
    if requested.len() > MAX_PUBLISH_BATCH {
        return Err(ServiceError::invalid(
            "events",
            format!("at most {MAX_PUBLISH_BATCH} events in one batch"),
        )
        .into());
    }
    requested
        .into_iter()
        .enumerate()
        .map(|(n, event)| {
            new_event(event).map_err(|status| {
                Status::invalid_argument(format!("events[{n}].{}", status.message()))
            })
        })
        .collect()
}

fn count_published(kind: EventKind, created: bool) {
    if created {
        metrics::counter!("callmesh_events_published_total", "kind" => kind.as_str()).increment(1);
    }
}

/// A `ForwardToCrmRequest` checked.
fn forward_request(request: pb::ForwardToCrmRequest) -> Result<ForwardRequest, Status> {
    let pb::ForwardToCrmRequest {
        idempotency_key,
        organization_id,
        lead_id,
        call_id,
        record,
        webhook_url,
    } = request;
    let key = required("idempotency_key", idempotency_key)?;
    let pb::CrmRecord {
        subject,
        to,
        name,
        summary,
        status,
        duration_secs,
    } = record.ok_or_else(|| ServiceError::invalid("record", "is required"))?;
    if !["held", "no answer", "voicemail", "failed"].contains(&status.as_str()) {
        return Err(ServiceError::invalid(
            "record.status",
            "must be one of held, no answer, voicemail, failed",
        )
        .into());
    }
    let record = CrmRecord {
        subject,
        to,
        name,
        summary,
        status,
        duration: duration_secs,
    };
    Ok(ForwardRequest {
        key,
        organization_id: required("organization_id", organization_id)?,
        lead_id: lead_id.trim().to_owned(),
        call_id: required("call_id", call_id)?,
        webhook_url: optional(webhook_url),
        record,
    })
}

fn forwarded_to_proto((delivery, created): (CrmDelivery, bool)) -> pb::ForwardToCrmResponse {
    pb::ForwardToCrmResponse {
        delivery: Some(delivery_to_proto(delivery)),
        created,
    }
}
