//! The analysis service over real gRPC, served in-process on 127.0.0.1:0, with a fake
//! OpenAI-compatible server on loopback for the LLM path.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use callmesh_analysis::AnalysisConfig;
use callmesh_analysis::llm::{LlmConfig, Provider};
use callmesh_proto::analysis::v1 as pb;
use callmesh_proto::analysis::v1::analysis_service_client::AnalysisServiceClient;
use callmesh_proto::common::v1 as common;
use callmesh_runtime::auth::{MeshChannel, authenticated};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_testkit::{Backend, TestDatabase, backends, wait_until};

struct Running {
    channel: Channel,
    shutdown: CancellationToken,
    _database: TestDatabase,
}

impl Running {
    fn client(&self) -> AnalysisServiceClient<MeshChannel> {
        AnalysisServiceClient::new(authenticated(self.channel.clone()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(backend: Backend, llm: Option<LlmConfig>) -> Running {
    let database = TestDatabase::create(backend).await;
    let config = AnalysisConfig {
        database: DatabaseUrl::parse(database.url(), "TEST").expect("url"),
        settings_file: None,
        llm,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(callmesh_analysis::serve(config, listener, shutdown.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy();
    let serving = wait_until(Duration::from_secs(20), || {
        let mut health = HealthClient::new(channel.clone());
        async move {
            health
                .check(HealthCheckRequest {
                    service: "callmesh.analysis.v1.AnalysisService".into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving)
        }
    })
    .await;
    assert!(serving, "{backend:?}: analysis never became SERVING");
    Running {
        channel,
        shutdown,
        _database: database,
    }
}

fn turn(role: common::Role, message: &str) -> common::TranscriptTurn {
    common::TranscriptTurn {
        role: role.into(),
        message: message.into(),
        time_in_call_secs: 0.0,
    }
}

fn sales_call() -> Vec<common::TranscriptTurn> {
    vec![
        turn(common::Role::Agent, "Hi, this is Sam from Riverside Bikes."),
        turn(
            common::Role::User,
            "Hi! How much is the cargo bike? I'd love to book a test ride on Saturday.",
        ),
        turn(
            common::Role::Agent,
            "Great, I'll send you a confirmation by text.",
        ),
        turn(common::Role::User, "Perfect, thank you!"),
    ]
}

fn analyze_request(key: &str, conversation_id: &str) -> pb::AnalyzeConversationRequest {
    pb::AnalyzeConversationRequest {
        idempotency_key: key.into(),
        organization_id: "org-1".into(),
        lead_id: "lead-1".into(),
        conversation_id: conversation_id.into(),
        channel: common::Channel::Voice.into(),
        turns: sales_call(),
        provider_analysis_json: String::new(),
        call_duration_secs: 120,
    }
}

/// The stored analysis of `conversation_id`: version `version`, or the latest when 0.
async fn stored(
    client: &mut AnalysisServiceClient<MeshChannel>,
    conversation_id: &str,
    version: i32,
) -> pb::Analysis {
    client
        .get_analysis(pb::GetAnalysisRequest {
            conversation_id: conversation_id.into(),
            version,
        })
        .await
        .expect("get")
        .into_inner()
        .analysis
        .expect("analysis")
}

#[tokio::test]
async fn analyses_are_versioned_idempotent_and_explained() {
    for backend in backends().await {
        let running = start(backend, None).await;
        let mut client = running.client();
        let first = client
            .analyze_conversation(analyze_request("a1", "conv-1"))
            .await
            .expect("analyze")
            .into_inner();
        assert!(first.created);
        let analysis = first.analysis.expect("analysis");
        assert_eq!(analysis.version, 1);
        assert_eq!(analysis.analyzer(), pb::Analyzer::Rules);
        let sum: i32 = analysis.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(sum, analysis.lead_score, "{:?}", analysis.score_factors);
        let intents: Vec<&str> = analysis.intents.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(intents, vec!["pricing", "booking"], "{backend:?}");
        assert_eq!(
            analysis.action_items,
            vec!["Send a confirmation by text"],
            "{backend:?}"
        );
        assert!(!analysis.keywords.is_empty());

        let again = client
            .analyze_conversation(analyze_request("a1", "conv-1"))
            .await
            .expect("repeat")
            .into_inner();
        assert!(!again.created);
        // The first answer (built as written) is exactly what was stored.
        assert_eq!(again.analysis.as_ref(), Some(&analysis), "{backend:?}");

        let rerun = client
            .analyze_conversation(analyze_request("a2", "conv-1"))
            .await
            .expect("re-run")
            .into_inner()
            .analysis
            .expect("analysis");
        assert_eq!(rerun.version, 2);
        let latest = stored(&mut client, "conv-1", 0).await;
        assert_eq!(latest.id, rerun.id);
        let first_again = stored(&mut client, "conv-1", 1).await;
        assert_eq!(first_again.id, analysis.id, "the first version is kept");

        // An empty call is analysed, not refused.
        let mut empty = analyze_request("a3", "conv-empty");
        empty.turns.clear();
        let empty = client
            .analyze_conversation(empty)
            .await
            .expect("empty transcript")
            .into_inner()
            .analysis
            .expect("analysis");
        assert_eq!(empty.lead_score, 0);
        assert_eq!(empty.outcome(), pb::CallOutcome::Failure);
        assert!(empty.summary.starts_with("No conversation took place"));
    }
}

#[tokio::test]
async fn a_batch_versions_each_analysis_as_one_at_a_time_would() {
    for backend in backends().await {
        let running = start(backend, None).await;
        let mut client = running.client();
        let before = client
            .analyze_conversation(analyze_request("b0", "conv-known"))
            .await
            .expect("analyze")
            .into_inner()
            .analysis
            .expect("analysis");
        let results = client
            .batch_analyze_conversation(pb::BatchAnalyzeConversationRequest {
                items: vec![
                    analyze_request("b1", "conv-new"),
                    // A conversation analysed before: its next version.
                    analyze_request("b2", "conv-known"),
                    // The same conversation again in this batch: the version after.
                    analyze_request("b3", "conv-new"),
                    // A key used before: its first answer.
                    analyze_request("b0", "conv-known"),
                    analyze_request("b4", "conv-other"),
                ],
            })
            .await
            .expect("batch")
            .into_inner()
            .results;
        let answers: Vec<(bool, String, i32)> = results
            .into_iter()
            .map(|result| match result.result {
                Some(pb::analyze_conversation_result::Result::Ok(ok)) => {
                    let analysis = ok.analysis.expect("analysis");
                    (ok.created, analysis.conversation_id, analysis.version)
                }
                other => panic!("{backend:?}: not ok: {other:?}"),
            })
            .collect();
        let expected = [
            (true, "conv-new", 1),
            (true, "conv-known", 2),
            (true, "conv-new", 2),
            (false, "conv-known", 1),
            (true, "conv-other", 1),
        ];
        let answers: Vec<(bool, &str, i32)> = answers
            .iter()
            .map(|(created, conversation, version)| (*created, conversation.as_str(), *version))
            .collect();
        assert_eq!(answers, expected, "{backend:?}");
        let latest = stored(&mut client, "conv-new", 0).await;
        assert_eq!(latest.version, 2, "{backend:?}");
        let first = stored(&mut client, "conv-known", 1).await;
        assert_eq!(
            first.id, before.id,
            "{backend:?}: the first version is kept"
        );
    }
}

#[tokio::test]
async fn interviews_are_created_evaluated_and_listed_by_job() {
    for backend in backends().await {
        let running = start(backend, None).await;
        let mut client = running.client();
        let session = client
            .create_interview_session(pb::CreateInterviewSessionRequest {
                idempotency_key: "s1".into(),
                candidate_name: "Ada Lovelace".into(),
                job_role: "Backend Engineer".into(),
                job_id: "job-7".into(),
                conversation_id: String::new(),
            })
            .await
            .expect("create")
            .into_inner();
        assert!(session.created);
        let session = session.session.expect("session");
        let request = |key: &str| pb::AnalyzeInterviewRequest {
            idempotency_key: key.into(),
            session_id: session.id.clone(),
            conversation_id: "conv-interview".into(),
            turns: vec![
                turn(common::Role::Agent, "Tell me about a hard project."),
                turn(
                    common::Role::User,
                    "In my last role I led the move of our billing service to Rust. The situation was a 900 ms p99, and as a result of removing row locks we reached 40 ms. I learned to measure first.",
                ),
            ],
        };
        let evaluation = client
            .analyze_interview(request("e1"))
            .await
            .expect("evaluate")
            .into_inner();
        assert!(evaluation.created);
        let evaluation = evaluation.evaluation.expect("evaluation");
        assert_eq!(evaluation.version, 1);
        assert_eq!(evaluation.session_id, session.id);
        assert!(evaluation.not_observable.contains(&"body language".into()));
        assert!(!evaluation.system_recommendation.is_empty());
        let second = client
            .analyze_interview(request("e2"))
            .await
            .expect("re-evaluate")
            .into_inner()
            .evaluation
            .expect("evaluation");
        assert_eq!(second.version, 2);

        // The conversation given at evaluation is now the session's.
        let found = client
            .get_interview_session(pb::GetInterviewSessionRequest {
                session_id: String::new(),
                conversation_id: "conv-interview".into(),
            })
            .await
            .expect("by conversation")
            .into_inner()
            .session
            .expect("session");
        assert_eq!(found.id, session.id);
        // An analysis of that conversation answers with its session (so the gateway needs no
        // second call to know it is an interview); any other conversation's with none.
        let analysed = client
            .analyze_conversation(analyze_request("a-interview", "conv-interview"))
            .await
            .expect("analyse the interview")
            .into_inner();
        assert_eq!(
            analysed.interview_session.map(|s| s.id),
            Some(session.id.clone())
        );
        let analysed = client
            .analyze_conversation(analyze_request("a-other", "conv-other"))
            .await
            .expect("analyse another call")
            .into_inner();
        assert_eq!(analysed.interview_session, None);

        let listed = client
            .list_interview_evaluations(pb::ListInterviewEvaluationsRequest {
                job_id: "job-7".into(),
                page: None,
            })
            .await
            .expect("list")
            .into_inner()
            .evaluations;
        let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec![second.id.as_str(), evaluation.id.as_str()]);

        let mut unknown = request("e3");
        unknown.session_id = "0190aaaa-0000-7000-8000-000000000000".into();
        let status = client
            .analyze_interview(unknown)
            .await
            .expect_err("unknown");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
}

/// One scripted answer of the fake model server.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    body: Value,
    delay: Duration,
}

#[derive(Clone, Default)]
struct FakeModel {
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<(String, HeaderMap, Value)>>>,
}

impl FakeModel {
    /// Answers in order; the last answer repeats.
    async fn start(script: Vec<Reply>) -> (FakeModel, SocketAddr) {
        let fake = FakeModel {
            script: Arc::new(Mutex::new(script.into())),
            requests: Arc::default(),
        };
        async fn answer(
            State(fake): State<FakeModel>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            Json(body): Json<Value>,
        ) -> Response {
            let reply = {
                let mut script = fake.script.lock().expect("script");
                fake.requests
                    .lock()
                    .expect("requests")
                    .push((uri.to_string(), headers, body));
                if script.len() > 1 {
                    script.pop_front()
                } else {
                    script.front().cloned()
                }
            };
            let Some(reply) = reply else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            tokio::time::sleep(reply.delay).await;
            (reply.status, Json(reply.body)).into_response()
        }
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(answer))
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                axum::routing::post(answer),
            )
            .with_state(fake.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, addr)
    }

    fn requests(&self) -> Vec<(String, HeaderMap, Value)> {
        self.requests.lock().expect("requests").clone()
    }
}

fn completion(content: &str) -> Reply {
    Reply {
        status: StatusCode::OK,
        body: json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_763_800_000,
            "model": "gpt-4o-2024-08-06",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
        }),
        delay: Duration::ZERO,
    }
}

fn good_answer() -> Reply {
    completion(
        &json!({
            "sentiment": "positive",
            "sentiment_score": 0.8,
            "keywords": ["cargo bike", "test ride"],
            "intents": [{"name": "booking", "confidence": 0.95,
                         "evidence": ["I'd love to book a test ride on Saturday."]}],
            "action_items": ["Text a confirmation"],
            "score_factors": [
                {"name": "clear buying intent", "contribution": 60, "detail": "booked a ride"},
                {"name": "positive tone", "contribution": 30, "detail": "enthusiastic"},
                {"name": "budget unknown", "contribution": -5, "detail": "no budget stated"}
            ],
            "summary": "The caller booked a test ride of the cargo bike. They were keen.",
            "outcome": "success",
            "outcome_rationale": "A test ride was booked."
        })
        .to_string(),
    )
}

fn error_reply(status: StatusCode, message: &str) -> Reply {
    Reply {
        status,
        body: json!({"error": {"message": message, "type": "error", "param": null, "code": null}}),
        delay: Duration::ZERO,
    }
}

fn openai(addr: SocketAddr, timeout: Duration) -> LlmConfig {
    LlmConfig {
        provider: Provider::OpenAi {
            api_key: "sk-test".into(),
            base_url: format!("http://{addr}/v1"),
            model: "gpt-4o".into(),
        },
        timeout,
        attempts: 2,
    }
}

async fn analyze_with(llm: LlmConfig, backend: Backend) -> pb::Analysis {
    let running = start(backend, Some(llm)).await;
    running
        .client()
        .analyze_conversation(analyze_request("k", "conv-llm"))
        .await
        .expect("analyze")
        .into_inner()
        .analysis
        .expect("analysis")
}

#[tokio::test]
async fn a_valid_model_answer_is_used_and_its_factors_make_the_score() {
    let backend = backends().await[0];
    let (fake, addr) = FakeModel::start(vec![good_answer()]).await;
    let analysis = analyze_with(openai(addr, Duration::from_secs(5)), backend).await;
    assert_eq!(analysis.analyzer(), pb::Analyzer::Llm);
    assert_eq!(analysis.lead_score, 85);
    assert_eq!(analysis.tier(), common::LeadTier::Hot);
    assert_eq!(analysis.intents[0].name, "booking");
    assert_eq!(analysis.action_items, vec!["Text a confirmation"]);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let (path, headers, body) = &requests[0];
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    let prompt = body["messages"][1]["content"].as_str().expect("prompt");
    assert!(
        prompt.contains("user: Hi! How much is the cargo bike?"),
        "{prompt}"
    );
}

#[tokio::test]
async fn azure_deployments_are_called_by_their_own_path_and_key() {
    let backend = backends().await[0];
    let (fake, addr) = FakeModel::start(vec![good_answer()]).await;
    let llm = LlmConfig {
        provider: Provider::Azure {
            api_key: "azure-key".into(),
            endpoint: format!("http://{addr}"),
            deployment: "gpt4o-prod".into(),
            api_version: "2024-10-21".into(),
        },
        timeout: Duration::from_secs(5),
        attempts: 1,
    };
    let analysis = analyze_with(llm, backend).await;
    assert_eq!(analysis.analyzer(), pb::Analyzer::Llm);
    let (path, headers, _) = &fake.requests()[0];
    assert_eq!(
        path,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(headers["api-key"], "azure-key");
}

#[tokio::test]
async fn nonsense_timeouts_and_refusals_fall_back_to_the_rules() {
    let backend = backends().await[0];
    let schema_violation = completion(
        &json!({"sentiment": "ecstatic", "sentiment_score": 3, "keywords": [], "intents": [],
                "action_items": [], "score_factors": [], "summary": "", "outcome": "yes",
                "outcome_rationale": ""})
        .to_string(),
    );
    let slow = Reply {
        delay: Duration::from_secs(3),
        ..good_answer()
    };
    let cases = [
        (
            "invalid JSON",
            vec![completion("Sure! Here is the analysis: {")],
            2,
        ),
        ("schema violation", vec![schema_violation], 2),
        ("timeout", vec![slow], 2),
        (
            "bad key",
            vec![error_reply(StatusCode::UNAUTHORIZED, "Incorrect API key")],
            1,
        ),
    ];
    for (case, script, expected_requests) in cases {
        let (fake, addr) = FakeModel::start(script).await;
        let analysis = analyze_with(openai(addr, Duration::from_millis(300)), backend).await;
        assert_eq!(analysis.analyzer(), pb::Analyzer::LlmFallback, "{case}");
        // The rules' own result stands in, whole.
        let intents: Vec<&str> = analysis.intents.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(intents, vec!["pricing", "booking"], "{case}");
        let sum: i32 = analysis.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(sum, analysis.lead_score, "{case}");
        assert_eq!(
            fake.requests().len(),
            expected_requests,
            "{case}: attempts made"
        );
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out() {
    let backend = backends().await[0];
    let mut limited = error_reply(StatusCode::TOO_MANY_REQUESTS, "Rate limit reached");
    limited.body["error"]["type"] = json!("requests");
    limited.body["error"]["code"] = json!("rate_limit_exceeded");
    let (fake, addr) = FakeModel::start(vec![limited, good_answer()]).await;
    let analysis = analyze_with(openai(addr, Duration::from_secs(5)), backend).await;
    assert_eq!(analysis.analyzer(), pb::Analyzer::Llm);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn interviews_use_the_model_too_and_fall_back_to_the_rules() {
    let backend = backends().await[0];
    let answer = completion(
        &json!({
            "domain_score": 82, "behavioral_score": 74, "communication_score": 90,
            "overall_score": 81, "confidence_level": "high", "cheating_detected": false,
            "speech_pattern": "clear and structured", "areas_of_improvement": ["More metrics"],
            "system_recommendation": "Recommended for Panel Interview", "evidence": []
        })
        .to_string(),
    );
    let nonsense = completion(&json!({"domain_score": 900}).to_string());
    for (script, expected) in [
        (answer, pb::Analyzer::Llm),
        (nonsense, pb::Analyzer::LlmFallback),
    ] {
        let (_fake, addr) = FakeModel::start(vec![script]).await;
        let running = start(backend, Some(openai(addr, Duration::from_secs(5)))).await;
        let mut client = running.client();
        let session = client
            .create_interview_session(pb::CreateInterviewSessionRequest {
                idempotency_key: "s".into(),
                candidate_name: "Ada".into(),
                job_role: "Backend Engineer".into(),
                job_id: "job-1".into(),
                conversation_id: "conv-i".into(),
            })
            .await
            .expect("session")
            .into_inner()
            .session
            .expect("session");
        let evaluation = client
            .analyze_interview(pb::AnalyzeInterviewRequest {
                idempotency_key: "e".into(),
                session_id: session.id,
                conversation_id: String::new(),
                turns: vec![turn(
                    common::Role::User,
                    "In my last role I led our move to Rust and cut latency tenfold.",
                )],
            })
            .await
            .expect("evaluate")
            .into_inner()
            .evaluation
            .expect("evaluation");
        assert_eq!(evaluation.analyzer(), expected);
        assert_eq!(evaluation.conversation_id, "conv-i", "the session's call");
        assert!(evaluation.not_observable.contains(&"body language".into()));
        if expected == pb::Analyzer::Llm {
            assert_eq!(evaluation.overall_score, 81);
            assert_eq!(evaluation.speech_pattern, "clear and structured");
        } else {
            assert!(evaluation.overall_score <= 100);
        }
    }
}
