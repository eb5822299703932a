//! The whole mesh in one test process: five services and the gateway on ephemeral ports, each
//! with a fresh database, driven over real HTTP and real gRPC. The lead RPCs are called through
//! a client that knows no callmesh proto at all (Python grpcio + server reflection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ServeError};
use callmesh_testkit::{Backend, TestDatabase, backends, wait_until};

struct Mesh {
    gateway: String,
    addrs: HashMap<Component, SocketAddr>,
    stops: HashMap<Component, (CancellationToken, JoinHandle<Result<(), ServeError>>)>,
    _databases: Vec<TestDatabase>,
}

async fn start_mesh(backend: Backend) -> Mesh {
    let mut databases = Vec::new();
    let mut addrs = HashMap::new();
    let mut stops = HashMap::new();
    let mut listeners = Vec::new();
    for component in Component::ALL {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.insert(component, listener.local_addr().expect("addr"));
        listeners.push((component, listener));
    }
    for (component, listener) in listeners {
        let database = TestDatabase::create(backend).await;
        let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
        databases.push(database);
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = match component {
            Component::Gateway => {
                let config = callmesh_gateway::GatewayConfig::new(
                    url,
                    Component::SERVICES
                        .into_iter()
                        .map(|s| (s, format!("http://{}", addrs[&s])))
                        .collect(),
                );
                tokio::spawn(callmesh_gateway::serve(config, listener, token))
            }
            Component::Lead => {
                let config = callmesh_lead::LeadConfig {
                    database: url,
                    default_organization_name: "Acme Plumbing".into(),
                    default_region: Default::default(),
                };
                tokio::spawn(callmesh_lead::serve(config, listener, token))
            }
            Component::Context => {
                let config = callmesh_context::ContextConfig {
                    database: url,
                    lead_url: format!("http://{}", addrs[&Component::Lead]),
                };
                tokio::spawn(callmesh_context::serve(config, listener, token))
            }
            Component::Analysis => {
                let config = callmesh_analysis::AnalysisConfig { database: url };
                tokio::spawn(callmesh_analysis::serve(config, listener, token))
            }
            Component::Telephony => {
                let config = callmesh_telephony::TelephonyConfig {
                    database: url,
                    storage_dir: std::env::temp_dir()
                        .join(format!("callmesh-storage-{}", std::process::id())),
                };
                tokio::spawn(callmesh_telephony::serve(config, listener, token))
            }
            Component::Notification => {
                let config = callmesh_notification::NotificationConfig { database: url };
                tokio::spawn(callmesh_notification::serve(config, listener, token))
            }
        };
        stops.insert(component, (shutdown, handle));
    }
    Mesh {
        gateway: format!("http://{}", addrs[&Component::Gateway]),
        addrs,
        stops,
        _databases: databases,
    }
}

impl Mesh {
    async fn health(&self) -> (u16, Value) {
        let response = reqwest::get(format!("{}/api/health", self.gateway))
            .await
            .expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    async fn stop(&mut self, component: Component) {
        let (token, handle) = self.stops.remove(&component).expect("running");
        token.cancel();
        let outcome = tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("stops promptly")
            .expect("task");
        assert!(
            outcome.is_ok(),
            "{} stopped with {outcome:?}",
            component.name()
        );
    }

    /// Runs the reflection client against `component`.
    async fn reflect(&self, component: Component, args: &[&str]) -> Value {
        let python = std::env::var("CALLMESH_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/reflection_call.py"
        );
        let output = tokio::process::Command::new(&python)
            .arg(script)
            .arg(self.addrs[&component].to_string())
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
        let mut mesh = start_mesh(backend).await;

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
            let listed = mesh.reflect(service, &["list"]).await;
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

        // The lead service, driven through reflection only.
        let created = mesh
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

        let resolved = mesh
            .call_lead(
                "ResolveOrganization",
                json!({"phone_number": "+12125550199"}),
            )
            .await;
        assert_eq!(
            resolved["ok"]["organization"]["id"],
            organization_id.as_str()
        );

        let first = mesh.call_lead(
            "FindOrCreateLead",
            json!({"organization_id": organization_id, "phone_number": "415-555-0142", "name": "Ann"}),
        ).await;
        assert_eq!(first["ok"]["created"], true, "{first}");
        let lead_id = first["ok"]["lead"]["id"]
            .as_str()
            .expect("lead id")
            .to_owned();
        let again = mesh
            .call_lead(
                "FindOrCreateLead",
                json!({"organization_id": organization_id, "phone_number": "+14155550142"}),
            )
            .await;
        assert_eq!(again["ok"]["lead"]["id"], lead_id.as_str());
        assert_ne!(again["ok"]["created"], true, "found, not created again");

        let fetched = mesh.call_lead("GetLead", json!({"lead_id": lead_id})).await;
        assert_eq!(fetched["ok"]["lead"]["name"], "Ann");
        let listed = mesh
            .call_lead("ListLeads", json!({"organization_id": organization_id}))
            .await;
        assert_eq!(listed["ok"]["leads"].as_array().map(Vec::len), Some(1));
        let found = mesh
            .call_lead(
                "SearchLeads",
                json!({"organization_id": organization_id, "query": "ann"}),
            )
            .await;
        assert_eq!(found["ok"]["leads"][0]["id"], lead_id.as_str());

        let invalid = mesh
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
        let unknown = mesh
            .call_lead(
                "GetLead",
                json!({"lead_id": "01900000-0000-7000-8000-000000000000"}),
            )
            .await;
        assert_eq!(unknown["error"]["code"], "NOT_FOUND", "{unknown}");

        // The services not built yet say so rather than answer with fake data.
        for (component, method) in [
            (
                Component::Context,
                "callmesh.context.v1.ContextService/GetHumanControl",
            ),
            (
                Component::Analysis,
                "callmesh.analysis.v1.AnalysisService/AnalyzeInterview",
            ),
            (
                Component::Telephony,
                "callmesh.telephony.v1.TelephonyService/SendSms",
            ),
            (
                Component::Notification,
                "callmesh.notification.v1.NotificationService/ForwardToCrm",
            ),
        ] {
            let answer = mesh.reflect(component, &["call", method, "{}"]).await;
            assert_eq!(
                answer["error"]["code"], "UNIMPLEMENTED",
                "{method}: {answer}"
            );
        }

        // One service stops: health turns 503 and names it.
        mesh.stop(Component::Context).await;
        let (status, body) = mesh.health().await;
        assert_eq!(status, 503, "{backend:?}: {body}");
        assert_eq!(body["unavailable"], json!(["context"]), "{body}");
        assert_ne!(body["services"]["context"], "SERVING");
        assert_eq!(body["services"]["lead"], "SERVING");

        for component in [
            Component::Gateway,
            Component::Lead,
            Component::Analysis,
            Component::Telephony,
            Component::Notification,
        ] {
            mesh.stop(component).await;
        }
    }
}
