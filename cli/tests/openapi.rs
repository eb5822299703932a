//! The gateway against its own OpenAPI document: the document it serves is the reviewed
//! `gateway/openapi.json`, its reference page comes from the binary, and schemathesis (from
//! `.venv`, `make test-deps`) fuzzes every operation with the admin token on a whole mesh:
//! no answer is a 5xx, and every answer (status, content type, headers, body) is one the
//! document describes.
//!
//! SQLite only: what is checked is the HTTP contract, which the database does not change, and
//! a fuzzing run is minutes of requests.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_runtime::config::DEFAULT_ORGANIZATION_ID;
use callmesh_testkit::Backend;
use support::{ADMIN_TOKEN, INITIATION_SECRET, Mesh, TWILIO_TOKEN, WEBHOOK_SECRET};

/// Test cases per operation: enough to walk every parameter and body shape, small enough
/// for `make test`.
const EXAMPLES_PER_OPERATION: &str = "30";
const RUN_DEADLINE: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_answers_as_its_document_says() {
    // Every optional feature configured: a 503 `not_configured` is documented, but here it
    // would hide the operation behind it.
    let mesh = Mesh::start(Backend::Sqlite, |config| {
        config.follow_up.agent_id = "agent_openapi".into();
        config.follow_up.agent_phone_number_id = "phnum_openapi".into();
    })
    .await;
    let gateway = mesh.gateway();

    let served: Value = mesh
        .http
        .get(format!("{gateway}/api/openapi.json"))
        .send()
        .await
        .expect("gateway answers")
        .json()
        .await
        .expect("the document is JSON");
    let committed: Value = serde_json::from_str(include_str!("../../gateway/openapi.json"))
        .expect("gateway/openapi.json is JSON");
    assert!(
        served == committed,
        "the served document is not gateway/openapi.json: regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p callmesh-gateway --test openapi`"
    );

    // The reference page and its assets come from the binary, not a CDN.
    let page = mesh
        .http
        .get(format!("{gateway}/api/docs/"))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("page");
    assert!(!html.contains("https://"), "the page loads nothing remote");
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset} not on the page");
        let response = mesh
            .http
            .get(format!("{gateway}/api/docs/{asset}"))
            .send()
            .await
            .expect("gateway answers");
        assert_eq!(response.status(), 200, "{asset}");
    }
    let initializer = mesh
        .http
        .get(format!("{gateway}/api/docs/swagger-initializer.js"))
        .send()
        .await
        .expect("gateway answers")
        .text()
        .await
        .expect("initializer");
    assert!(initializer.contains("/api/openapi.json"), "{initializer}");

    // axum's own refusals are JSON errors too.
    let bad_query = mesh
        .http
        .get(format!("{gateway}/api/inbox?limit=many"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(bad_query.status(), 400);
    let error: Value = bad_query.json().await.expect("a JSON error");
    assert_eq!(error["error"]["code"], "bad_request", "{error}");
    let wrong_method = mesh
        .http
        .delete(format!("{gateway}/api/inbox"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(wrong_method.status(), 405);
    assert!(wrong_method.headers().contains_key("allow"));
    let error: Value = wrong_method.json().await.expect("a JSON error");
    assert_eq!(error["error"]["code"], "method_not_allowed", "{error}");

    // A call, its lead and an interview, so the operations about them get past 404.
    let conversation_id = "conv_openapi";
    let body = include_str!("fixtures/post_call_transcription.json")
        .replace("CONVERSATION_ID", conversation_id);
    let (status, _) = mesh
        .post_signed("/api/webhooks/elevenlabs/post-call", &body)
        .await;
    assert_eq!(status, 200);
    mesh.wait_processed(1).await;
    let lead_id = mesh
        .lead()
        .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
            organization_id: DEFAULT_ORGANIZATION_ID.into(),
            phone_number: "+12523960448".into(),
            ..Default::default()
        })
        .await
        .expect("the call's lead")
        .into_inner()
        .lead
        .expect("a lead")
        .id;
    let (status, interview) = mesh
        .operator(
            "/api/interviews",
            json!({"candidate_name": "Sam", "job_role": "Mechanic", "job_id": "job_1",
                   "conversation_id": conversation_id}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{interview}");
    let session_id = interview["session"]["id"].as_str().expect("session id");
    let config = std::env::temp_dir().join(format!(
        "callmesh-schemathesis-{}.toml",
        support::uuid_like()
    ));
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\
             \"path.lead_id\" = \"{lead_id}\"\n\
             \"path.conversation_id\" = \"{conversation_id}\"\n\
             \"path.session_id\" = \"{session_id}\"\n\
             \"path.org_id\" = \"{DEFAULT_ORGANIZATION_ID}\"\n"
        ),
    )
    .expect("write the schemathesis config");

    let python = std::env::var("CALLMESH_PYTHON").unwrap_or_else(|_| "python3".into());
    // Schemathesis and Hypothesis keep caches in the working directory: not in the repository.
    let scratch =
        std::env::temp_dir().join(format!("callmesh-schemathesis-{}", support::uuid_like()));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let run = tokio::process::Command::new(&python)
        .args([
            "-m",
            "schemathesis.cli",
            "--config-file",
            &config.to_string_lossy(),
            "run",
            &format!("{gateway}/api/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {ADMIN_TOKEN}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            // Streams never end: their contract is tested in live.rs.
            "--exclude-path-regex",
            "^/api/stream/",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            EXAMPLES_PER_OPERATION,
            "--generation-deterministic",
            "--request-timeout",
            "20",
            // One worker: Hypothesis' introspection is not thread-safe and errs now and then.
            "--workers",
            "1",
            "--no-color",
        ])
        // Signs webhooks the way the providers do (see the module).
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env(
            "PYTHONPATH",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support"),
        )
        .env("CALLMESH_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("CALLMESH_TEST_INITIATION_SECRET", INITIATION_SECRET)
        .env("CALLMESH_TEST_TWILIO_TOKEN", TWILIO_TOKEN)
        .current_dir(&scratch)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_DEADLINE, run)
        .await
        .expect("schemathesis finished within its deadline")
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "needs schemathesis (`make test-deps`): {stderr}"
    );
    assert!(
        output.status.success(),
        "schemathesis found answers the document does not allow:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&scratch);
    mesh.shutdown().await;
}
