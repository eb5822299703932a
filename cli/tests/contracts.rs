//! The answers the integrations callmesh replaces were built against, through the whole mesh.

mod support;

use serde_json::{Value, json};

use support::{ADMIN_TOKEN, Mesh};

fn finished_conversation(id: &str) -> Value {
    let call: Value = serde_json::from_str(
        &include_str!("fixtures/post_call_transcription.json").replace("CONVERSATION_ID", id),
    )
    .expect("fixture");
    let mut data = call["data"].clone();
    data["status"] = json!("done");
    data
}

#[tokio::test]
async fn agent_call_status_answers_call_id_status_and_raw_response() {
    let mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |_| {}).await;
    mesh.fake_api
        .put("conv_contract", finished_conversation("conv_contract"));
    let response = mesh
        .http
        .post(format!("{}/api/agent-calls/status", mesh.gateway()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"conversation_id": "conv_contract"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["callId"], "conv_contract", "{answer}");
    assert_eq!(answer["status"], "completed", "{answer}");
    assert!(answer["rawResponse"].is_object(), "{answer}");
    assert_eq!(answer["rawResponse"]["conversation_id"], "conv_contract");
    // The richer fields stay beside them.
    assert_eq!(answer["call"]["status"], "completed");
    assert_eq!(answer["source"], "elevenlabs_api");
    mesh.shutdown().await;
}

async fn admin(mesh: &Mesh, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = mesh
        .http
        .request(method, format!("{}{path}", mesh.gateway()))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answer");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_jobs_interviews_list_its_sessions_from_active_to_completed() {
    let mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |_| {}).await;
    let created = admin(
        &mesh,
        reqwest::Method::POST,
        "/api/interviews",
        Some(
            json!({"candidate_name": "Ada Lovelace", "job_role": "Backend Engineer",
            "job_id": "job-7"}),
        ),
    )
    .await;
    let session_id = created["session"]["id"].as_str().expect("id").to_owned();

    // Just created: listed under its job, active, no evaluation yet.
    let listed = admin(
        &mesh,
        reqwest::Method::GET,
        "/api/interviews?job_id=job-7",
        None,
    )
    .await;
    let sessions = listed["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{listed}");
    assert_eq!(sessions[0]["id"], session_id.as_str());
    assert_eq!(sessions[0]["candidate_name"], "Ada Lovelace");
    assert_eq!(sessions[0]["status"], "active", "{listed}");
    assert!(sessions[0]["latest_evaluation"].is_null(), "{listed}");

    // Evaluated: completed, with its evaluation.
    mesh.fake_api
        .put("conv_job_7", finished_conversation("conv_job_7"));
    admin(
        &mesh,
        reqwest::Method::POST,
        &format!("/api/interviews/{session_id}/complete"),
        Some(json!({"conversation_id": "conv_job_7"})),
    )
    .await;
    let listed = admin(
        &mesh,
        reqwest::Method::GET,
        "/api/interviews?job_id=job-7",
        None,
    )
    .await;
    let session = &listed["sessions"][0];
    assert_eq!(session["status"], "completed", "{listed}");
    assert_eq!(
        session["latest_evaluation"]["session_id"],
        session_id.as_str()
    );
    assert!(
        session["latest_evaluation"]["overall_score"].is_number(),
        "{listed}"
    );
    // Another job's list does not show it.
    let other = admin(
        &mesh,
        reqwest::Method::GET,
        "/api/interviews?job_id=job-8",
        None,
    )
    .await;
    assert_eq!(other["sessions"], json!([]), "{other}");
    mesh.shutdown().await;
}
