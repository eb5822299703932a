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
