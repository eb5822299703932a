//! The whole mesh in one test process: five services and the gateway on ephemeral ports, each
//! with a fresh database, driven over real HTTP and real gRPC. The lead RPCs are called through
//! a client that knows no callmesh proto at all (Python grpcio + server reflection).

mod support;

use std::time::Duration;

use serde_json::{Value, json};

use callmesh_runtime::Component;
use callmesh_testkit::{backends, wait_until};

use support::Mesh;

/// Runs the Python reflection client, which knows no callmesh proto.
struct Reflection<'a>(&'a Mesh);

impl Reflection<'_> {
    /// Runs the reflection client against `component`, presenting the mesh token.
    async fn reflect(&self, component: Component, args: &[&str]) -> Value {
        let token = callmesh_runtime::auth::credentials().token();
        self.reflect_as(component, args, Some(token)).await
    }

    /// Runs the reflection client against `component` with `token`, or none.
    async fn reflect_as(&self, component: Component, args: &[&str], token: Option<&str>) -> Value {
        let python = std::env::var("CALLMESH_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/reflection_call.py"
        );
        let mut command = tokio::process::Command::new(&python);
        if let Some(token) = token {
            command.env("CALLMESH_TOKEN", token);
        }
        let output = command
            .arg(script)
            .arg(self.0.addrs[&component].to_string())
            .args(args)
            .output()
            .await
            .expect("run the Python reflection client");
        assert!(
            output.status.success(),
            "reflection client failed (needs grpcio and grpcio-reflection: `make test-deps`): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON from the reflection client")
    }

    async fn call_lead(&self, method: &str, request: Value) -> Value {
        self.reflect(
            Component::Lead,
            &[
                "call",
                &format!("callmesh.lead.v1.LeadService/{method}"),
                &request.to_string(),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn the_whole_mesh_serves_reflects_and_reports_a_stopped_service() {
    for backend in backends().await {
        let mut mesh = Mesh::start(backend, |_| {}).await;
        let reflection = Reflection(&mesh);

        let all_serving = wait_until(Duration::from_secs(30), || async {
            mesh.health().await.0 == 200
        })
        .await;
        let (status, body) = mesh.health().await;
        assert!(
            all_serving,
            "{backend:?}: health never became 200: {status} {body}"
        );
        for service in Component::SERVICES {
            assert_eq!(body["services"][service.name()], "SERVING", "{body}");
        }

        // Reflection lists each server's own service and health, no proto files needed.
        for service in Component::SERVICES {
            let listed = reflection.reflect(service, &["list"]).await;
            let names: Vec<&str> = listed["services"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let own = service.grpc_service().expect("a gRPC service");
            assert!(names.contains(&own), "{names:?} lacks {own}");
            assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
        }

        // Reflection needs no token; an RPC without the mesh token is refused.
        let anonymous = reflection
            .reflect_as(
                Component::Lead,
                &[
                    "call",
                    "callmesh.lead.v1.LeadService/ResolveOrganization",
                    r#"{"phone_number": "+12125550199"}"#,
                ],
                None,
            )
            .await;
        assert_eq!(anonymous["error"]["code"], "UNAUTHENTICATED", "{anonymous}");

        // The lead service, driven through reflection only.
        let created = reflection
            .call_lead(
                "CreateOrganization",
                json!({"idempotency_key": "mesh-org", "name": "Bike Shop",
                   "timezone": "America/New_York", "phone_numbers": ["(212) 555-0199"]}),
            )
            .await;
        let organization = &created["ok"]["organization"];
        assert_eq!(
            organization["phone_numbers"],
            json!(["+12125550199"]),
            "{created}"
        );
        let organization_id = organization["id"].as_str().expect("id").to_owned();

        let resolved = reflection
            .call_lead(
                "ResolveOrganization",
                json!({"phone_number": "+12125550199"}),
            )
            .await;
        assert_eq!(
            resolved["ok"]["organization"]["id"],
            organization_id.as_str()
        );

        let first = reflection.call_lead(
            "FindOrCreateLead",
            json!({"organization_id": organization_id, "phone_number": "415-555-0142", "name": "Ann"}),
        ).await;
        assert_eq!(first["ok"]["created"], true, "{first}");
        let lead_id = first["ok"]["lead"]["id"]
            .as_str()
            .expect("lead id")
            .to_owned();
        let again = reflection
            .call_lead(
                "FindOrCreateLead",
                json!({"organization_id": organization_id, "phone_number": "+14155550142"}),
            )
            .await;
        assert_eq!(again["ok"]["lead"]["id"], lead_id.as_str());
        assert_ne!(again["ok"]["created"], true, "found, not created again");

        let fetched = reflection
            .call_lead("GetLead", json!({"lead_id": lead_id}))
            .await;
        assert_eq!(fetched["ok"]["lead"]["name"], "Ann");
        let listed = reflection
            .call_lead("ListLeads", json!({"organization_id": organization_id}))
            .await;
        assert_eq!(listed["ok"]["leads"].as_array().map(Vec::len), Some(1));
        let found = reflection
            .call_lead(
                "SearchLeads",
                json!({"organization_id": organization_id, "query": "ann"}),
            )
            .await;
        assert_eq!(found["ok"]["leads"][0]["id"], lead_id.as_str());

        let invalid = reflection
            .call_lead(
                "FindOrCreateLead",
                json!({"organization_id": organization_id, "phone_number": "not a phone"}),
            )
            .await;
        assert_eq!(invalid["error"]["code"], "INVALID_ARGUMENT", "{invalid}");
        assert!(
            invalid["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("phone_number"))
        );
        let unknown = reflection
            .call_lead(
                "GetLead",
                json!({"lead_id": "01900000-0000-7000-8000-000000000000"}),
            )
            .await;
        assert_eq!(unknown["error"]["code"], "NOT_FOUND", "{unknown}");

        // An interview session without a candidate is refused, naming the field.
        let answer = reflection
            .reflect(
                Component::Analysis,
                &[
                    "call",
                    "callmesh.analysis.v1.AnalysisService/CreateInterviewSession",
                    r#"{"idempotency_key": "k1", "job_role": "Engineer", "job_id": "job-1"}"#,
                ],
            )
            .await;
        assert_eq!(answer["error"]["code"], "INVALID_ARGUMENT", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("candidate_name")),
            "{answer}"
        );

        // One service stops: health turns 503 and names it.
        mesh.stop(Component::Context).await;
        let (status, body) = mesh.health().await;
        assert_eq!(status, 503, "{backend:?}: {body}");
        assert_eq!(body["unavailable"], json!(["context"]), "{body}");
        assert_ne!(body["services"]["context"], "SERVING");
        assert_eq!(body["services"]["lead"], "SERVING");

        mesh.shutdown().await;
    }
}
