//! ElevenLabs webhooks through the whole mesh: real HTTP into the gateway, real gRPC between
//! the services, a fake ElevenLabs API on loopback. Every test runs on SQLite and, when it is
//! reachable, on PostgreSQL.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use callmesh_proto::analysis::v1 as analysis_pb;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1 as notification_pb;
use callmesh_proto::telephony::v1 as telephony_pb;
use callmesh_runtime::Component;
use callmesh_testkit::{backends, wait_until};

use support::{INITIATION_SECRET, Mesh, WEBHOOK_SECRET, count};

const POST_CALL: &str = "/api/webhooks/elevenlabs/post-call";
const INITIATION: &str = "/api/webhooks/elevenlabs/conversation-initiation";
const EVENTS: &str = "/api/webhooks/elevenlabs/conversation-events";
const CALL_STATUS: &str = "/api/webhooks/elevenlabs/call-status";
const SHOP_NUMBER: &str = "+12018774358";
const CALLER: &str = "+12523960448";

/// The long, full `post_call_transcription` fixture, for conversation `id` (and a CallSid of
/// its own).
fn transcription(id: &str) -> String {
    include_str!("fixtures/post_call_transcription.json")
        .replace("CONVERSATION_ID", id)
        .replace("CA15884136fed840d807968d7c83b21ba4", &call_sid(id))
}

fn call_sid(conversation_id: &str) -> String {
    format!("CA_{conversation_id}")
}

async fn call_of(mesh: &Mesh, conversation_id: &str) -> telephony_pb::Call {
    mesh.telephony()
        .get_call(telephony_pb::GetCallRequest {
            conversation_id: conversation_id.into(),
            ..Default::default()
        })
        .await
        .expect("call recorded")
        .into_inner()
        .call
        .expect("call")
}

async fn initiate(mesh: &Mesh, caller: &str) -> (u16, Value) {
    let body = json!({"caller_id": caller, "agent_id": "agent_7101k5zvyjhmfg983brhmhkd98n6",
                      "called_number": SHOP_NUMBER, "call_sid": "CA0000000000000000000000000000init"});
    mesh.post(
        INITIATION,
        &body.to_string(),
        &[("X-Webhook-Secret", INITIATION_SECRET)],
    )
    .await
}

#[tokio::test]
async fn a_finished_call_reaches_every_service_once_and_feeds_the_next_call() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;
        let conversation = "conv_9001k1zph3fkeh5s8xg9z90swaqa";
        let body = transcription(conversation);

        // The same delivery three times: accepted once, recognised twice.
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(mesh.post_signed(POST_CALL, &body).await);
        }
        assert_eq!(
            answers[0],
            (200, json!({"status": "accepted"})),
            "{backend:?}"
        );
        assert_eq!(answers[1], (200, json!({"status": "duplicate"})));
        assert_eq!(answers[2], (200, json!({"status": "duplicate"})));
        mesh.wait_processed(1).await;
        assert_eq!(
            mesh.inbox("all").await.len(),
            1,
            "one inbox item for three deliveries"
        );

        // telephony: the outcome of the call
        let call = call_of(&mesh, conversation).await;
        assert_eq!(call.status, telephony_pb::CallStatus::Completed as i32);
        assert_eq!(call.duration_secs, 88);
        assert_eq!(call.cost, 296.0);
        assert_eq!(call.call_sid, call_sid(conversation));
        assert_eq!(call.from_number, CALLER);
        assert_eq!(call.to_number, SHOP_NUMBER);
        assert_eq!(call.termination_reason, "Call ended by remote party");
        assert_eq!(
            call.organization_id, shop,
            "the called number decides the organization"
        );

        // lead: found by the caller's number, updated by the analysis
        let lead = mesh
            .lead()
            .get_lead(lead_pb::GetLeadRequest {
                lead_id: call.lead_id.clone(),
            })
            .await
            .expect("lead")
            .into_inner()
            .lead
            .expect("lead");
        assert_eq!(lead.phone_number, CALLER);
        assert_eq!(lead.interaction_count, 1, "{backend:?}: applied once");
        assert_eq!(lead.status, lead_pb::LeadStatus::Contacted as i32);
        assert!(lead.last_contact_at.is_some());

        // analysis: ElevenLabs' own summary and verdict are kept
        let analysis = mesh
            .analysis()
            .get_analysis(analysis_pb::GetAnalysisRequest {
                conversation_id: conversation.into(),
                version: 0,
            })
            .await
            .expect("analysis")
            .into_inner()
            .analysis
            .expect("analysis");
        assert_eq!(analysis.version, 1);
        assert!(
            analysis.summary.starts_with("Angelo asked about the Metro"),
            "{}",
            analysis.summary
        );
        assert_eq!(analysis.outcome, analysis_pb::CallOutcome::Success as i32);
        assert!(analysis.provider_analysis_json.contains("booked_test_ride"));
        let factors: i32 = analysis.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(factors, analysis.lead_score, "the score is its factors");
        assert_eq!(lead.score, analysis.lead_score);
        assert_eq!(lead.summary, analysis.summary);

        // context: the transcript, turn by turn (the tool-only turn has no words)
        let messages = mesh
            .context()
            .list_messages(context_pb::ListMessagesRequest {
                lead_id: lead.id.clone(),
                page: None,
                conversation_id: String::new(),
            })
            .await
            .expect("messages")
            .into_inner()
            .messages;
        assert_eq!(messages.len(), 20, "{backend:?}");
        assert!(
            messages[0]
                .content
                .starts_with("Hi, thanks for calling Bike Shop")
        );

        // notification: dashboards hear about it once
        let events = mesh.events(&shop).await;
        assert_eq!(count(&events, notification_pb::EventType::CallEnded), 1);
        assert_eq!(
            count(&events, notification_pb::EventType::AnalysisCompleted),
            1
        );

        // The next call from the same number starts with this one's history.
        let (status, answer) = initiate(&mesh, CALLER).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["type"], "conversation_initiation_client_data");
        let vars = &answer["dynamic_variables"];
        assert_eq!(vars["caller_type"], "existing_lead");
        assert_eq!(vars["lead_status"], "Returning Customer");
        assert_eq!(vars["organization_name"], "Bike Shop");
        assert_eq!(vars["organization_id"], shop.as_str());
        // The agent collected his name on the first call: the next one greets him by it.
        assert_eq!(vars["customer_name"], "Angelo Rossi");
        assert_eq!(vars["has_conversation_history"], true);
        assert_eq!(vars["total_messages"], 20);
        // The call's own summary (ElevenLabs'), which the analysis's summary opens with.
        let previous = vars["previous_summary"].as_str().expect("summary");
        assert!(
            previous.starts_with("Angelo asked about the Metro e-bike"),
            "{previous}"
        );
        assert!(
            analysis.summary.starts_with(previous),
            "{}",
            analysis.summary
        );
        let context = vars["conversation_context"].as_str().expect("text");
        assert_eq!(
            context.lines().count(),
            6,
            "the last six messages: {context}"
        );
        assert!(context.ends_with("Customer (call): Bye!"), "{context}");

        // A caller never heard of gets a fresh lead and the new-caller variables.
        let (_, fresh) = initiate(&mesh, "+14155550177").await;
        assert_eq!(fresh["dynamic_variables"]["caller_type"], "new_caller");
        assert_eq!(fresh["dynamic_variables"]["lead_status"], "New Inquiry");
        assert_eq!(
            fresh["dynamic_variables"]["has_conversation_history"],
            false
        );
        assert_eq!(fresh["dynamic_variables"]["total_messages"], 0);
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn audio_failures_unknown_types_and_live_events_each_land_where_they_belong() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;

        // Audio first (the order is not guaranteed): stored, and the call known by it.
        let audio = b"ID3\x04\x00fake mp3 frames".to_vec();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&audio);
        let body = json!({"type": "post_call_audio", "event_timestamp": 1739537319,
            "data": {"agent_id": "xyz", "conversation_id": "conv_audio", "full_audio": encoded}});
        assert_eq!(mesh.post_signed(POST_CALL, &body.to_string()).await.0, 200);

        // A call that never started.
        let failure = json!({"type": "call_initiation_failure", "event_timestamp": "1759931652",
            "data": {"agent_id": "xyz", "conversation_id": "conv_busy", "failure_reason": "busy",
                "metadata": {"type": "twilio", "body": {"CallSid": "CA8367245817625617832576245724",
                    "CallStatus": "busy", "SipResponseCode": "487", "Direction": "outbound-api",
                    "From": SHOP_NUMBER, "To": "+14155550199", "SequenceNumber": "2",
                    "CallbackSource": "call-progress-events", "CallDuration": "0"}}}});
        assert_eq!(
            mesh.post_signed("/api/convai-webhook", &failure.to_string())
                .await
                .0,
            200
        );

        // A workspace event callmesh has no use for.
        let removal = json!({"type": "voice_removal_notice", "event_timestamp": 1, "data": {"voice_id": "v"}});
        assert_eq!(
            mesh.post_signed("/webhooks/elevenlabs", &removal.to_string())
                .await
                .0,
            200
        );

        mesh.wait_processed(2).await;

        // A live event of a conversation callmesh knows (by the failed call above).
        let live = json!({"type": "agent_response_started", "conversation_id": "conv_busy",
            "timestamp": 1759931653, "data": {"text": "Hello?"}});
        assert_eq!(mesh.post_signed(EVENTS, &live.to_string()).await.0, 200);
        mesh.wait_processed(3).await;

        let recorded = call_of(&mesh, "conv_audio").await;
        let recordings = mesh
            .telephony()
            .list_recordings(telephony_pb::ListRecordingsRequest {
                call_id: recorded.id.clone(),
            })
            .await
            .expect("recordings")
            .into_inner()
            .recordings;
        assert_eq!(recordings.len(), 1, "{backend:?}");
        let stored =
            std::fs::read(mesh.storage_dir.join(&recordings[0].storage_path)).expect("audio file");
        assert_eq!(stored, audio, "the audio is stored byte for byte");

        let busy = call_of(&mesh, "conv_busy").await;
        assert_eq!(busy.status, telephony_pb::CallStatus::Busy as i32);
        assert_eq!(busy.termination_reason, "busy");
        assert_eq!(busy.call_sid, "CA8367245817625617832576245724");
        assert_eq!(busy.organization_id, shop);
        let lead = mesh
            .lead()
            .get_lead(lead_pb::GetLeadRequest {
                lead_id: busy.lead_id.clone(),
            })
            .await
            .expect("lead")
            .into_inner()
            .lead
            .expect("lead");
        assert_eq!(lead.phone_number, "+14155550199");
        assert_eq!(
            lead.last_attempt_outcome,
            lead_pb::ContactOutcome::Busy as i32
        );

        let ignored = mesh.inbox("ignored").await;
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert_eq!(ignored[0]["event_type"], "voice_removal_notice");

        let logged = mesh
            .context()
            .list_conversation_events(context_pb::ListConversationEventsRequest {
                conversation_id: "conv_busy".into(),
                page: None,
            })
            .await
            .expect("events")
            .into_inner()
            .events;
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0].event_type, "agent_response_started");
        assert_eq!(logged[0].lead_id, busy.lead_id);

        let events = mesh.events(&shop).await;
        assert_eq!(count(&events, notification_pb::EventType::CallFailed), 1);
        assert_eq!(
            count(&events, notification_pb::EventType::ConversationEvent),
            1
        );
        // The audio's call has no organization yet: its event goes to the default one.
        let default_events = mesh
            .events(callmesh_runtime::config::DEFAULT_ORGANIZATION_ID)
            .await;
        assert_eq!(
            count(
                &default_events,
                notification_pb::EventType::RecordingAvailable
            ),
            1
        );
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn call_status_moves_forward_only_and_a_missing_transcript_is_fetched() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |config| {
            config.elevenlabs.transcript_grace = Duration::ZERO;
        })
        .await;
        mesh.create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;
        let conversation = "conv_status";
        // The call exists from its audio; then the integration reports its states.
        let encoded = base64::engine::general_purpose::STANDARD.encode(b"mp3");
        let audio = json!({"type": "post_call_audio", "data": {"conversation_id": conversation, "full_audio": encoded}});
        assert_eq!(mesh.post_signed(POST_CALL, &audio.to_string()).await.0, 200);
        mesh.wait_processed(1).await;

        let mut fetched = serde_json::from_str::<Value>(&transcription(conversation))
            .expect("fixture")["data"]
            .clone();
        fetched["status"] = json!("done");
        mesh.fake_api.put(conversation, fetched);

        for event in ["call.ringing", "call.answered"] {
            let body = json!({"event_type": event, "conversation_id": conversation});
            assert_eq!(
                mesh.post_signed(CALL_STATUS, &body.to_string()).await.0,
                200,
                "{event}"
            );
            mesh.wait_processed(1).await;
        }
        // A repeat is recognised at the door; a late, earlier state is kept but changes nothing.
        let repeat = json!({"event_type": "call.ringing", "conversation_id": conversation});
        assert_eq!(
            mesh.post_signed(CALL_STATUS, &repeat.to_string()).await,
            (200, json!({"status": "duplicate"}))
        );
        let late = json!({"event_type": "call.initiated", "conversation_id": conversation});
        assert_eq!(
            mesh.post_signed(CALL_STATUS, &late.to_string()).await.0,
            200
        );
        mesh.wait_processed(1).await;
        assert_eq!(
            call_of(&mesh, conversation).await.status,
            telephony_pb::CallStatus::InProgress as i32,
            "{backend:?}: a late 'initiated' does not move the call back"
        );

        let unknown = json!({"event_type": "call.teleported", "conversation_id": conversation});
        assert_eq!(
            mesh.post_signed(CALL_STATUS, &unknown.to_string()).await.0,
            200
        );
        let completed = json!({"event_type": "call.completed", "conversation_id": conversation});
        assert_eq!(
            mesh.post_signed(CALL_STATUS, &completed.to_string())
                .await
                .0,
            200
        );

        // No transcript arrived: callmesh asks the API for it and runs the post-call recipe.
        let fetched = wait_until(Duration::from_secs(30), || async {
            mesh.context()
                .get_transcript(context_pb::GetTranscriptRequest {
                    conversation_id: conversation.into(),
                })
                .await
                .is_ok()
        })
        .await;
        assert!(
            fetched,
            "{backend:?}: the transcript was fetched from the API"
        );
        mesh.wait_processed(1).await;
        let call = call_of(&mesh, conversation).await;
        assert_eq!(call.status, telephony_pb::CallStatus::Completed as i32);
        assert_eq!(
            call.duration_secs, 88,
            "the fetched conversation completed the record"
        );
        assert!(
            mesh.inbox("ignored")
                .await
                .iter()
                .any(|i| i["event_type"] == "call_status")
        );

        let changes = mesh
            .telephony()
            .list_call_status_changes(telephony_pb::ListCallStatusChangesRequest {
                call_id: call.id.clone(),
            })
            .await
            .expect("history")
            .into_inner()
            .changes;
        let applied: Vec<bool> = changes.iter().map(|c| c.applied).collect();
        assert_eq!(
            applied,
            [true, true, false, true],
            "every callback kept, the late one not applied"
        );

        // The stored state, with the latest raw payload.
        let response = mesh
            .http
            .post(format!("{}/api/agent-calls/status", mesh.gateway()))
            .bearer_auth(support::ADMIN_TOKEN)
            .json(&json!({"conversation_id": conversation}))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200);
        let status: Value = response.json().await.expect("json");
        assert_eq!(status["call"]["status"], "completed", "{status}");
        assert_eq!(status["source"], "stored");
        assert_eq!(status["latest_payload"]["event_type"], "call.completed");
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn agent_call_status_asks_the_api_when_callmesh_knows_nothing() {
    let mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |_| {}).await;
    let mut remote = serde_json::from_str::<Value>(&transcription("conv_remote")).expect("fixture")
        ["data"]
        .clone();
    remote["status"] = json!("done");
    mesh.fake_api.put("conv_remote", remote);
    let response = mesh
        .http
        .post(format!("{}/api/agent-calls/status", mesh.gateway()))
        .bearer_auth(support::ADMIN_TOKEN)
        .json(&json!({"conversation_id": "conv_remote"}))
        .send()
        .await
        .expect("answer");
    let status: Value = response.json().await.expect("json");
    assert_eq!(status["source"], "elevenlabs_api", "{status}");
    assert_eq!(status["call"]["status"], "completed");
    assert_eq!(status["call"]["duration_secs"], 88);
    assert_eq!(
        mesh.fake_api.requests.lock().expect("lock").as_slice(),
        ["conv_remote"]
    );

    let missing = mesh
        .http
        .post(format!("{}/api/agent-calls/status", mesh.gateway()))
        .bearer_auth(support::ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 400);
    mesh.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_json_error_and_leave_no_trace() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |config| {
            config.elevenlabs.max_body_bytes = 4096;
        })
        .await;
        let body = transcription("conv_bad");
        let now = chrono::Utc::now().timestamp();
        let sign = |t: i64, secret: &str, body: &str| {
            callmesh_gateway::verify::elevenlabs::sign(secret, t, body.as_bytes())
        };
        let tampered = body.replace("Angelo", "Angela");
        let valid = sign(now, WEBHOOK_SECRET, &body);
        let truncated = valid[..valid.len() - 4].to_owned();
        let cases: Vec<(&str, String, &str)> = vec![
            ("tampered body", valid.clone(), tampered.as_str()),
            (
                "wrong secret",
                sign(now, "wsec_other", &body),
                body.as_str(),
            ),
            (
                "expired",
                sign(now - 31 * 60, WEBHOOK_SECRET, &body),
                body.as_str(),
            ),
            (
                "future",
                sign(now + 31 * 60, WEBHOOK_SECRET, &body),
                body.as_str(),
            ),
            ("malformed", "v0=deadbeef".to_owned(), body.as_str()),
            ("empty signature", format!("t={now},v0="), body.as_str()),
            ("truncated signature", truncated, body.as_str()),
        ];
        for (case, signature, sent) in cases {
            let (status, answer) = mesh
                .post(POST_CALL, sent, &[("ElevenLabs-Signature", &signature)])
                .await;
            assert_eq!(status, 401, "{backend:?} {case}: {answer}");
            assert_eq!(answer["error"]["code"], "unauthorized", "{case}");
        }
        let (status, answer) = mesh.post(POST_CALL, &body, &[]).await;
        assert_eq!(
            (status, answer["error"]["message"].as_str()),
            (401, Some("missing ElevenLabs-Signature header"))
        );

        // Signed, but not something callmesh can work with: 400 naming the field.
        let (status, answer) = mesh.post_signed(POST_CALL, "this is not json").await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("body is not JSON"))
        );
        let wrong_type = json!({"type": "post_call_transcription", "data": {"conversation_id": "c", "transcript": [{"role": 1}]}});
        let (status, answer) = mesh.post_signed(POST_CALL, &wrong_type.to_string()).await;
        assert_eq!(status, 400);
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("data.transcript[0].role")),
            "{answer}"
        );

        // Size limits: generous for post-call (audio), small elsewhere.
        let big = json!({"type": "agent_response", "conversation_id": "c", "data": {"text": "x".repeat(8192)}});
        let (status, answer) = mesh.post_signed(EVENTS, &big.to_string()).await;
        assert_eq!(status, 413, "{answer}");
        assert_eq!(answer["error"]["code"], "payload_too_large");

        // The initiation webhook wants its header secret.
        let request = json!({"caller_id": CALLER, "called_number": SHOP_NUMBER}).to_string();
        let (status, _) = mesh.post(INITIATION, &request, &[]).await;
        assert_eq!(status, 401);
        let (status, _) = mesh
            .post(INITIATION, &request, &[("X-Webhook-Secret", "guess")])
            .await;
        assert_eq!(status, 401);

        assert!(
            mesh.inbox("all").await.is_empty(),
            "{backend:?}: nothing refused was stored"
        );

        // A GET on a webhook path is a health check; unknown paths are JSON 404s.
        let health = mesh
            .http
            .get(format!("{}{POST_CALL}", mesh.gateway()))
            .send()
            .await
            .expect("get");
        assert_eq!(health.status(), 200);
        let (status, answer) = mesh.post("/api/nothing-here", "{}", &[]).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
        // The admin API wants its token.
        let anonymous = mesh
            .http
            .get(format!("{}/api/inbox", mesh.gateway()))
            .send()
            .await
            .expect("get");
        assert_eq!(anonymous.status(), 401);
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn initiation_answers_within_its_deadline_when_context_is_down_and_limits_callers() {
    let mut mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |config| {
        config.initiation.deadline = Duration::from_millis(500);
        config.initiation.rate_limit = 3;
    })
    .await;
    mesh.stop(Component::Context).await;
    let started = Instant::now();
    let (status, answer) = initiate(&mesh, CALLER).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered while the phone rings"
    );
    assert_eq!(status, 200, "never a 5xx: {answer}");
    let vars = &answer["dynamic_variables"];
    for name in [
        "conversation_context",
        "customer_name",
        "organization_name",
        "organization_id",
        "lead_status",
        "previous_summary",
        "caller_type",
        "has_conversation_history",
        "total_messages",
    ] {
        assert!(vars.get(name).is_some(), "{name} missing from {answer}");
    }
    assert_eq!(vars["customer_name"], "Customer");
    assert_eq!(vars["caller_type"], "new_caller");

    // Three per caller per window here; the fourth is refused, other callers are not.
    for _ in 0..2 {
        assert_eq!(initiate(&mesh, CALLER).await.0, 200);
    }
    let (status, answer) = initiate(&mesh, CALLER).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(initiate(&mesh, "+14155550123").await.0, 200);
    mesh.shutdown().await;
}

/// The caller's context is built while the call is counted; once a caller is known to be over
/// the limit, its calls are counted first and turned away without the context service being
/// asked: a caller dialling number after number records no lead anywhere, even when counting
/// is slow.
#[tokio::test]
async fn a_caller_known_over_the_limit_is_turned_away_without_its_context_built() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    for backend in backends().await {
        let mesh = Mesh::start(backend, |config| config.initiation.rate_limit = 2).await;
        mesh.create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;
        let ring = |number: &'static str| {
            let body = json!({"caller_id": CALLER, "called_number": number,
                              "call_sid": "CA0000000000000000000000000000over"});
            let mesh = &mesh;
            async move {
                mesh.post(
                    INITIATION,
                    &body.to_string(),
                    &[("X-Webhook-Secret", INITIATION_SECRET)],
                )
                .await
            }
        };
        for expected in ["new_caller", "existing_lead"] {
            let (status, answer) = ring(SHOP_NUMBER).await;
            assert_eq!(status, 200, "{backend:?}: {answer}");
            let variables = &answer["dynamic_variables"];
            assert_eq!(variables["caller_type"], expected, "{backend:?}");
            assert_eq!(variables["organization_name"], "Bike Shop", "{backend:?}");
        }
        let (status, answer) = ring(SHOP_NUMBER).await;
        assert_eq!(status, 429, "{backend:?}: {answer}");
        assert_eq!(answer["error"]["code"], "rate_limited", "{backend:?}");

        // The same caller rings three other businesses while the rate counters are held for a
        // moment (another replica's long write, say): turned away each time, and none of them
        // gets the caller as a lead, though there was time enough to build its context.
        let gateway_db = sea_orm::Database::connect(mesh.database_url(Component::Gateway))
            .await
            .expect("gateway database");
        for (n, number) in ["+12125550141", "+12125550142", "+12125550143"]
            .into_iter()
            .enumerate()
        {
            let organization_id = mesh
                .create_organization(&format!("Other {n}"), number, None)
                .await;
            let held = gateway_db.begin().await.expect("begin");
            let hold = match backend {
                callmesh_testkit::Backend::Postgres => {
                    "LOCK TABLE gateway_rate_counters IN SHARE ROW EXCLUSIVE MODE"
                }
                // SQLite: any write takes the database's one write lock.
                _ => "DELETE FROM gateway_rate_counters WHERE key = 'held'",
            };
            held.execute_unprepared(hold).await.expect("hold counters");
            let release = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                held.rollback().await.expect("release counters");
            });
            let (status, answer) = ring(number).await;
            assert_eq!(status, 429, "{backend:?}: {answer}");
            release.await.expect("released");
            let counts = mesh
                .lead()
                .count_leads(lead_pb::CountLeadsRequest {
                    organization_id: organization_id.clone(),
                })
                .await
                .expect("count leads")
                .into_inner()
                .counts;
            assert_eq!(
                counts.iter().map(|c| c.leads).sum::<u64>(),
                0,
                "{backend:?}: {number}'s organization has the caller as a lead"
            );
        }
        // Another caller is not held back by this one.
        assert_eq!(initiate(&mesh, "+14155550123").await.0, 200, "{backend:?}");
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn a_service_down_delays_work_and_loses_nothing() {
    for backend in backends().await {
        let mut mesh = Mesh::start(backend, |_| {}).await;
        mesh.create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;
        mesh.stop(Component::Analysis).await;
        // Health tells of the service down; liveness and readiness (what an orchestrator acts
        // on) ask only the gateway itself, so it stays in rotation taking webhooks.
        assert_eq!(mesh.health().await.0, 503, "{backend:?}");
        for path in ["/api/live", "/api/ready"] {
            let response = reqwest::get(format!("{}{path}", mesh.gateway()))
                .await
                .expect("gateway answers");
            assert_eq!(response.status().as_u16(), 200, "{backend:?}: {path}");
        }
        for i in 0..3 {
            let (status, _) = mesh
                .post_signed(POST_CALL, &transcription(&format!("conv_down_{i}")))
                .await;
            assert_eq!(status, 200, "{backend:?}: accepted while analysis is down");
        }
        // They wait, retried with backoff, none dead.
        let retried = wait_until(Duration::from_secs(20), || async {
            mesh.inbox("pending")
                .await
                .iter()
                .filter(|i| i["attempts"].as_i64().unwrap_or(0) >= 2)
                .count()
                == 3
        })
        .await;
        assert!(retried, "{backend:?}: {:?}", mesh.inbox("all").await);
        assert!(mesh.inbox("dead").await.is_empty());

        mesh.restart(Component::Analysis).await;
        mesh.wait_processed(3).await;
        let lead = mesh
            .lead()
            .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
                organization_id: call_of(&mesh, "conv_down_0").await.organization_id,
                phone_number: CALLER.into(),
                ..Default::default()
            })
            .await
            .expect("lead")
            .into_inner()
            .lead
            .expect("lead");
        assert_eq!(
            lead.interaction_count, 3,
            "{backend:?}: every call applied, none twice"
        );
        mesh.shutdown().await;
    }
}

/// The gateway as its own process, killed with SIGKILL while work is pending, then restarted:
/// everything it acknowledged is processed, nothing twice.
#[tokio::test]
async fn a_killed_gateway_finishes_what_it_acknowledged_after_restart() {
    for backend in backends().await {
        let mut mesh = Mesh::start_without_gateway(backend, |_| {}).await;
        mesh.create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;
        mesh.stop(Component::Lead).await;
        let mut gateway = spawn_gateway(&mesh);
        mesh.wait_until_gateway_answers().await;
        for i in 0..3 {
            let (status, _) = mesh
                .post_signed(POST_CALL, &transcription(&format!("conv_kill_{i}")))
                .await;
            assert_eq!(status, 200, "{backend:?}");
        }
        gateway.kill().expect("SIGKILL the gateway");
        let _ = gateway.wait();

        mesh.restart(Component::Lead).await;
        let mut gateway = spawn_gateway(&mesh);
        mesh.wait_healthy().await;
        mesh.wait_processed(3).await;
        let events = mesh
            .events(&call_of(&mesh, "conv_kill_0").await.organization_id)
            .await;
        assert_eq!(
            count(&events, notification_pb::EventType::CallEnded),
            3,
            "{backend:?}"
        );
        let _ = gateway.kill();
        let _ = gateway.wait();
        mesh.shutdown().await;
    }
}

/// The gateway process; killed when dropped, so a failing test leaves nothing running.
struct GatewayChild(std::process::Child);

impl GatewayChild {
    fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()
    }

    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for GatewayChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_gateway(mesh: &Mesh) -> GatewayChild {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_callmesh"));
    command
        .args(["serve", "gateway"])
        .env("GATEWAY_ADDR", mesh.addrs[&Component::Gateway].to_string())
        .env(
            "GATEWAY_DATABASE_URL",
            mesh.database_url(Component::Gateway),
        )
        .env("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("CALLMESH_ADMIN_TOKEN", support::ADMIN_TOKEN)
        // The services run in this process: the gateway presents their mesh token.
        .env(
            "CALLMESH_INTERNAL_TOKEN",
            callmesh_runtime::auth::credentials().token(),
        )
        .env("INBOX_RETRY_BASE_MS", "100")
        .env("INBOX_RETRY_MAX_MS", "500")
        .env("INBOX_POLL_MS", "100")
        .env("INBOX_LEASE_SECS", "2")
        .env("INBOX_MAX_ATTEMPTS", "1000")
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for service in Component::SERVICES {
        command.env(
            service.url_var(),
            format!("http://{}", mesh.addrs[&service]),
        );
    }
    GatewayChild(command.spawn().expect("start the gateway"))
}

trait GatewayProcess {
    async fn wait_until_gateway_answers(&self);
}

impl GatewayProcess for Mesh {
    async fn wait_until_gateway_answers(&self) {
        let up = wait_until(Duration::from_secs(30), || async {
            self.http
                .get(format!("{}/api/health", self.gateway()))
                .send()
                .await
                .is_ok()
        })
        .await;
        assert!(up, "the gateway process never answered");
    }
}

#[tokio::test]
async fn dead_letters_wait_for_an_operator_and_replay_runs_them_again() {
    for backend in backends().await {
        let mut mesh = Mesh::start(backend, |config| {
            config.inbox.max_attempts = 2;
        })
        .await;
        mesh.stop(Component::Notification).await;
        assert_eq!(
            mesh.post_signed(POST_CALL, &transcription("conv_dead"))
                .await
                .0,
            200
        );
        let dead = wait_until(Duration::from_secs(20), || async {
            mesh.inbox("dead").await.len() == 1
        })
        .await;
        assert!(dead, "{backend:?}: {:?}", mesh.inbox("all").await);
        let item = mesh.inbox("dead").await.remove(0);
        assert_eq!(item["attempts"], 2);
        assert!(
            item["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{item}"
        );
        // The operator's view of the backlog: one dead item, nothing waiting.
        let backlog: Value = mesh
            .http
            .get(format!("{}/api/inbox/backlog", mesh.gateway()))
            .bearer_auth(support::ADMIN_TOKEN)
            .send()
            .await
            .expect("backlog")
            .json()
            .await
            .expect("json");
        assert_eq!(backlog["items"]["dead"], 1, "{backlog}");
        assert_eq!(backlog["items"]["pending"], 0, "{backlog}");
        assert_eq!(backlog["oldest_waiting_secs"], Value::Null, "{backlog}");

        mesh.restart(Component::Notification).await;
        let replay = |id: &str| {
            mesh.http
                .post(format!("{}/api/inbox/{id}/replay", mesh.gateway()))
                .bearer_auth(support::ADMIN_TOKEN)
                .send()
        };
        assert_eq!(replay("not-a-number").await.expect("answer").status(), 400);
        assert_eq!(replay("999999").await.expect("answer").status(), 404);
        let replayed = replay(&item["id"].to_string()).await.expect("answer");
        assert_eq!(replayed.status(), 200);
        mesh.wait_processed(1).await;
        let events = mesh
            .events(&call_of(&mesh, "conv_dead").await.organization_id)
            .await;
        assert_eq!(
            count(&events, notification_pb::EventType::CallEnded),
            1,
            "{backend:?}"
        );

        let bad_state = mesh
            .http
            .get(format!("{}/api/inbox?state=lost", mesh.gateway()))
            .bearer_auth(support::ADMIN_TOKEN)
            .send()
            .await
            .expect("answer");
        assert_eq!(bad_state.status(), 400);
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn call_status_without_a_secret_is_accepted_only_from_allowed_addresses() {
    let allowed = Mesh::start(callmesh_testkit::Backend::Sqlite, |config| {
        config.elevenlabs.call_status_secrets.clear();
        config.elevenlabs.allowed_ips = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await;
    let body = json!({"event_type": "call.ringing", "callSid": "CA_unknown"}).to_string();
    assert_eq!(allowed.post(CALL_STATUS, &body, &[]).await.0, 200);
    allowed.wait_processed(0).await;
    // A call callmesh does not know: kept, answered, ignored.
    assert_eq!(allowed.inbox("ignored").await.len(), 1);
    allowed.shutdown().await;

    let elsewhere = Mesh::start(callmesh_testkit::Backend::Sqlite, |config| {
        config.elevenlabs.call_status_secrets.clear();
        config.elevenlabs.allowed_ips = vec!["34.67.146.145".parse().expect("ip")];
    })
    .await;
    let (status, answer) = elsewhere.post(CALL_STATUS, &body, &[]).await;
    assert_eq!(status, 401, "{answer}");
    assert!(elsewhere.inbox("all").await.is_empty());
    elsewhere.shutdown().await;
}

#[tokio::test]
async fn a_signed_initiation_request_must_carry_a_valid_signature_too() {
    let mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |config| {
        use callmesh_gateway::secret::Secret;
        config.elevenlabs.initiation_secrets = vec![Secret::new(WEBHOOK_SECRET)];
    })
    .await;
    let body = json!({"caller_id": CALLER, "called_number": SHOP_NUMBER, "call_id": "sip-call-1"})
        .to_string();
    let good = callmesh_gateway::verify::elevenlabs::sign(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    let bad = callmesh_gateway::verify::elevenlabs::sign(
        "wrong",
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    let header = ("X-Webhook-Secret", INITIATION_SECRET);
    let (status, answer) = mesh
        .post(
            INITIATION,
            &body,
            &[header, ("ElevenLabs-Signature", &good)],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["dynamic_variables"]["caller_type"], "new_caller");
    let (status, _) = mesh
        .post(INITIATION, &body, &[header, ("ElevenLabs-Signature", &bad)])
        .await;
    assert_eq!(status, 401);
    let (status, answer) = mesh.post(INITIATION, "caller_id=+1", &[header]).await;
    assert_eq!(status, 400, "{answer}");
    mesh.shutdown().await;
}

/// A ringing phone reuses which organization owns the number it called for
/// `ORGANIZATION_CACHE_SECS` (5 s by default), so it need not ask the lead service every time;
/// a number given to an organization answers for it once that time has passed.
#[tokio::test]
async fn a_number_given_to_an_organization_rings_for_it_once_the_kept_owner_lapses() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |config| {
            config.organization_cache = Duration::from_secs(5);
        })
        .await;
        let ring = |n: usize| {
            let body = json!({"caller_id": format!("+1252396{n:04}"),
                              "called_number": SHOP_NUMBER});
            let mesh = &mesh;
            async move {
                let (status, answer) = mesh
                    .post(
                        INITIATION,
                        &body.to_string(),
                        &[("X-Webhook-Secret", INITIATION_SECRET)],
                    )
                    .await;
                assert_eq!(status, 200, "{answer}");
                answer["dynamic_variables"]["organization_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            }
        };
        // Nobody owns the number yet: the default organization answers, and is kept.
        let kept_at = Instant::now();
        assert_eq!(ring(0).await, "Acme Plumbing", "{backend:?}");
        mesh.create_organization("Bike Shop", SHOP_NUMBER, None)
            .await;
        let second = ring(1).await;
        if kept_at.elapsed() < Duration::from_secs(4) {
            assert_eq!(second, "Acme Plumbing", "{backend:?}: the owner is kept");
        }
        // Once it lapses, the number rings for its new owner.
        let mut owner = second;
        for n in 2..20 {
            if owner == "Bike Shop" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            owner = ring(n).await;
        }
        assert_eq!(owner, "Bike Shop", "{backend:?}");
        assert!(
            kept_at.elapsed() >= Duration::from_secs(5),
            "{backend:?}: the owner was asked again before its time"
        );
        mesh.shutdown().await;
    }
}
