//! Analysis through the gateway: a finished call's analysis, re-running it after a vocabulary
//! change, and interviews (sessions, evaluation after the call, by hand, dry runs, by job).

mod support;

use serde_json::{Value, json};

use callmesh_proto::analysis::v1 as analysis_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1 as notification_pb;
use callmesh_testkit::backends;

use support::{ADMIN_TOKEN, Mesh};

const POST_CALL: &str = "/api/webhooks/elevenlabs/post-call";
const SHOP_NUMBER: &str = "+14155550123";

fn post_call(
    conversation_id: &str,
    caller: &str,
    turns: &[(&str, &str)],
    variables: Value,
) -> String {
    let transcript: Vec<Value> = turns
        .iter()
        .enumerate()
        .map(|(i, (role, message))| {
            json!({"role": role, "message": message, "time_in_call_secs": i * 5})
        })
        .collect();
    json!({
        "type": "post_call_transcription",
        "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {
            "agent_id": "agent_sales",
            "conversation_id": conversation_id,
            "status": "done",
            "transcript": transcript,
            "metadata": {
                "start_time_unix_secs": chrono::Utc::now().timestamp() - 120,
                "call_duration_secs": 95,
                "phone_call": {"direction": "inbound", "agent_number": SHOP_NUMBER,
                               "external_number": caller, "call_sid": format!("CA_{conversation_id}"),
                               "type": "twilio"}
            },
            "analysis": {"call_successful": "unknown", "transcript_summary": "",
                         "evaluation_criteria_results": {}, "data_collection_results": {}},
            "conversation_initiation_client_data": {"dynamic_variables": variables}
        }
    })
    .to_string()
}

const SALES: [(&str, &str); 4] = [
    (
        "agent",
        "Hi, this is Sam from Riverside Bikes. How can I help?",
    ),
    (
        "user",
        "Hi! What does the Packster cargo bike cost? I'd love to book a test ride on Saturday.",
    ),
    (
        "agent",
        "It is 4,200 dollars. I'll send you a confirmation by text.",
    ),
    ("user", "Great, thank you!"),
];

const INTERVIEW: [(&str, &str); 4] = [
    ("agent", "Tell me about a system you built."),
    (
        "user",
        "In my last role I led the rewrite of our billing service in Rust. The situation was a 900 ms p99 latency; as a result of removing row locks we reached 40 ms.",
    ),
    ("agent", "How do you handle disagreement?"),
    (
        "user",
        "For example, there was a time a stakeholder wanted to skip testing before a deadline. I was responsible for the release, so I proposed a smaller scope and we shipped on time. I learned to negotiate early.",
    ),
];

async fn get(mesh: &Mesh, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = mesh.http.get(format!("{}{path}", mesh.gateway()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post_as(mesh: &Mesh, path: &str, body: Value, token: &str) -> (u16, Value) {
    mesh.post(
        path,
        &body.to_string(),
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await
}

fn factor<'a>(analysis: &'a Value, name: &str) -> Option<&'a Value> {
    analysis["score_factors"]
        .as_array()
        .and_then(|factors| factors.iter().find(|f| f["name"] == name))
}

#[tokio::test]
async fn a_call_is_analysed_and_rerun_as_a_new_version_after_a_vocabulary_change() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Riverside Bikes", SHOP_NUMBER, None)
            .await;
        let (status, _) = mesh
            .post_signed(
                POST_CALL,
                &post_call("conv_sale", "+14155550199", &SALES, json!({})),
            )
            .await;
        assert_eq!(status, 200);
        mesh.wait_processed(1).await;

        let first = mesh
            .analysis()
            .get_analysis(analysis_pb::GetAnalysisRequest {
                conversation_id: "conv_sale".into(),
                version: 0,
            })
            .await
            .expect("analysed")
            .into_inner()
            .analysis
            .expect("analysis");
        assert_eq!(first.version, 1);
        let intents: Vec<&str> = first.intents.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(intents, vec!["pricing", "booking"], "{backend:?}");
        assert_eq!(first.action_items, vec!["Send a confirmation by text"]);

        // The shop adds its products to its vocabulary, then re-runs the call.
        std::fs::write(
            mesh.analysis_settings(),
            json!({"vocabularies": {shop.clone(): ["Packster", "cargo bike"]}}).to_string(),
        )
        .expect("write settings");
        let path = "/api/conversations/conv_sale/analysis/run";
        let (status, body) = post_as(&mesh, path, json!({}), ADMIN_TOKEN).await;
        assert_eq!(status, 200, "{body}");
        let rerun = &body["analysis"];
        assert_eq!(rerun["version"], 2, "{body}");
        assert_eq!(rerun["analyzer"], "rules");
        assert_eq!(rerun["keywords"][0], "packster", "{body}");
        let vocabulary = factor(rerun, "vocabulary").expect("vocabulary factor");
        assert_eq!(vocabulary["detail"], "asked about Packster, cargo bike");
        // Compared before the 0-100 clamp: a hot call may be at 100 either way.
        let first_unclamped: i64 = first
            .score_factors
            .iter()
            .filter(|f| f.name != "clamp")
            .map(|f| i64::from(f.contribution))
            .sum();
        let rerun_unclamped: i64 = rerun["score_factors"]
            .as_array()
            .expect("factors")
            .iter()
            .filter(|f| f["name"] != "clamp")
            .map(|f| f["contribution"].as_i64().expect("points"))
            .sum();
        assert_eq!(
            rerun_unclamped,
            first_unclamped + vocabulary["contribution"].as_i64().expect("points"),
            "only the vocabulary changed: {body}"
        );
        let sum: i64 = rerun["score_factors"]
            .as_array()
            .expect("factors")
            .iter()
            .map(|f| f["contribution"].as_i64().expect("points"))
            .sum();
        assert_eq!(rerun["lead_score"].as_i64(), Some(sum));
        // The lead carries the re-run's score; the first version is kept.
        let lead = mesh
            .lead()
            .get_lead(lead_pb::GetLeadRequest {
                lead_id: first.lead_id.clone(),
            })
            .await
            .expect("lead")
            .into_inner()
            .lead
            .expect("lead");
        assert_eq!(Some(i64::from(lead.score)), rerun["lead_score"].as_i64());
        assert_eq!(
            lead.interaction_count, 1,
            "a re-run is not another conversation"
        );
        // Dashboards hear about both versions.
        let completed: Vec<Value> = mesh
            .events(&shop)
            .await
            .into_iter()
            .filter(|e| e.r#type == notification_pb::EventType::AnalysisCompleted as i32)
            .map(|e| serde_json::from_str(&e.payload_json).expect("JSON payload"))
            .collect();
        let versions: Vec<&Value> = completed.iter().map(|p| &p["version"]).collect();
        assert_eq!(versions, vec![&json!(1), &json!(2)], "{completed:?}");
        assert_eq!(completed[1]["source"], "re-run");
        assert_eq!(completed[1]["score"], rerun["lead_score"]);
        assert_eq!(completed[0]["call_sid"], "CA_conv_sale");
        let kept = mesh
            .analysis()
            .get_analysis(analysis_pb::GetAnalysisRequest {
                conversation_id: "conv_sale".into(),
                version: 1,
            })
            .await
            .expect("v1")
            .into_inner()
            .analysis
            .expect("analysis");
        assert_eq!(kept.id, first.id);

        // Another organization's token cannot re-run it; nobody can re-run a call never seen.
        let other = mesh
            .create_organization("Other Shop", "+14155550124", None)
            .await;
        let token = mesh
            .lead()
            .create_organization_token(lead_pb::CreateOrganizationTokenRequest {
                idempotency_key: String::new(),
                organization_id: other,
                name: "ops".into(),
            })
            .await
            .expect("token")
            .into_inner()
            .secret;
        let (status, body) = post_as(&mesh, path, json!({}), &token).await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = post_as(
            &mesh,
            "/api/conversations/conv_never/analysis/run",
            json!({}),
            ADMIN_TOKEN,
        )
        .await;
        assert_eq!(status, 404, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("conv_never"))
        );
        // No conversation id at all is the caller's mistake, named as such.
        for blank in [
            "/api/conversations//analysis/run",
            "/api/conversations/%20/analysis/run",
        ] {
            let (status, body) = post_as(&mesh, blank, json!({}), ADMIN_TOKEN).await;
            assert_eq!(status, 400, "{blank}: {body}");
            assert_eq!(
                body["error"]["message"], "conversation_id: is required",
                "{blank}"
            );
        }
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn interviews_are_evaluated_after_the_call_by_hand_and_listed_by_job() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        mesh.create_organization("Hiring Co", SHOP_NUMBER, None)
            .await;

        // Bad requests name the problem and create nothing.
        let (status, body) = mesh
            .post(
                "/api/interviews",
                &json!({"candidate_name": "Ada"}).to_string(),
                &[],
            )
            .await;
        assert_eq!(status, 401, "{body}");
        let (status, body) = post_as(
            &mesh,
            "/api/interviews",
            json!({"candidate_name": "Ada", "job_role": "Backend Engineer"}),
            ADMIN_TOKEN,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("job_id")),
            "{body}"
        );

        let (status, body) = post_as(
            &mesh,
            "/api/interviews",
            json!({"candidate_name": "Ada Lovelace", "job_role": "Backend Engineer", "job_id": "job-42"}),
            ADMIN_TOKEN,
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let session_id = body["session"]["id"]
            .as_str()
            .expect("session id")
            .to_owned();

        // The interview call ends; its webhook names the session.
        let (status, _) = mesh
            .post_signed(
                POST_CALL,
                &post_call(
                    "conv_interview",
                    "+14155550111",
                    &INTERVIEW,
                    json!({"interview_session_id": session_id}),
                ),
            )
            .await;
        assert_eq!(status, 200);
        // A webhook naming a session nobody created is accepted and logged, not retried.
        let (status, _) = mesh
            .post_signed(
                POST_CALL,
                &post_call(
                    "conv_stray",
                    "+14155550112",
                    &INTERVIEW,
                    json!({"interview_session_id": "0190ffff-0000-7000-8000-000000000000"}),
                ),
            )
            .await;
        assert_eq!(status, 200);
        mesh.wait_processed(2).await;
        assert!(mesh.inbox("dead").await.is_empty());

        let (status, body) = get(&mesh, "/api/interviews?job_id=job-42", Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        let evaluations = body["evaluations"].as_array().expect("evaluations");
        assert_eq!(evaluations.len(), 1, "{body}");
        let evaluation = &evaluations[0];
        assert_eq!(evaluation["session_id"], session_id.as_str());
        assert_eq!(evaluation["conversation_id"], "conv_interview");
        assert_eq!(
            evaluation["system_recommendation"], "Recommended for Panel Interview",
            "{body}"
        );
        assert!(
            evaluation["not_observable"]
                .as_array()
                .expect("list")
                .contains(&json!("body language"))
        );
        for score in [
            "domain_score",
            "behavioral_score",
            "communication_score",
            "overall_score",
        ] {
            assert!(
                evaluation[score]
                    .as_i64()
                    .is_some_and(|s| (0..=100).contains(&s)),
                "{score}"
            );
        }

        // By hand, on a call only ElevenLabs has.
        let transcript: Vec<Value> = INTERVIEW
            .iter()
            .map(|(role, message)| json!({"role": role, "message": message}))
            .collect();
        mesh.fake_api.put(
            "conv_at_elevenlabs",
            json!({"agent_id": "agent_interviewer", "conversation_id": "conv_at_elevenlabs",
                   "status": "done", "transcript": transcript, "metadata": {"call_duration_secs": 300}}),
        );
        let (status, body) = post_as(
            &mesh,
            &format!("/api/interviews/{session_id}/complete"),
            json!({"conversation_id": "conv_at_elevenlabs"}),
            ADMIN_TOKEN,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["evaluation"]["version"], 2, "{body}");
        assert_eq!(body["evaluation"]["conversation_id"], "conv_at_elevenlabs");
        assert!(
            mesh.fake_api
                .requests
                .lock()
                .expect("lock")
                .contains(&"conv_at_elevenlabs".to_owned())
        );

        // A dry run answers without keeping anything.
        let (status, body) = post_as(
            &mesh,
            "/api/test-interview-analysis",
            json!({"conversation_id": "conv_interview"}),
            ADMIN_TOKEN,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stored"], false);
        assert!(
            body["evaluation"]["overall_score"]
                .as_i64()
                .is_some_and(|s| s > 0),
            "{body}"
        );
        let (_, body) = get(&mesh, "/api/interviews?job_id=job-42", Some(ADMIN_TOKEN)).await;
        assert_eq!(
            body["evaluations"].as_array().map(Vec::len),
            Some(2),
            "{body}"
        );

        // A call the analysis recognises as a screening interview is evaluated too, in a
        // session opened from its variables, though no interviewer agent took it.
        let (status, _) = mesh
            .post_signed(
                POST_CALL,
                &post_call(
                    "conv_screening",
                    "+14155550113",
                    &INTERVIEW,
                    json!({"candidate_name": "Grace Hopper", "job_role": "Backend Engineer",
                           "job_id": "job-7"}),
                ),
            )
            .await;
        assert_eq!(status, 200);
        mesh.wait_processed(3).await;
        let (_, body) = get(&mesh, "/api/interviews?job_id=job-7", Some(ADMIN_TOKEN)).await;
        assert_eq!(
            body["evaluations"].as_array().map(Vec::len),
            Some(1),
            "{body}"
        );

        let (status, body) = post_as(
            &mesh,
            "/api/interviews/0190ffff-0000-7000-8000-000000000000/complete",
            json!({"conversation_id": "conv_interview"}),
            ADMIN_TOKEN,
        )
        .await;
        assert_eq!(status, 404, "{body}");
        let (status, body) = get(&mesh, "/api/interviews", Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 400, "{body}");
        mesh.shutdown().await;
    }
}
