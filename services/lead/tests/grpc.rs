//! The lead service over real gRPC, served in-process on 127.0.0.1:0.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use callmesh_lead::phone::DefaultRegion;
use callmesh_lead::{DEFAULT_ORGANIZATION_ID, LeadConfig};
use callmesh_proto::common::v1::PageRequest;
use callmesh_proto::lead::v1 as pb;
use callmesh_proto::lead::v1::lead_service_client::LeadServiceClient;
use callmesh_runtime::auth::{MeshChannel, MeshCredentials, authenticated};
use callmesh_runtime::{Component, ServeError, db::DatabaseUrl};
use callmesh_testkit::{Backend, TestDatabase, backends, wait_until};

struct Running {
    channel: Channel,
    shutdown: CancellationToken,
    server: JoinHandle<Result<(), ServeError>>,
    _database: TestDatabase,
}

impl Running {
    fn leads(&self) -> LeadServiceClient<MeshChannel> {
        LeadServiceClient::new(authenticated(self.channel.clone()))
    }

    async fn health(&self) -> Option<ServingStatus> {
        let mut client = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: "callmesh.lead.v1.LeadService".into(),
        };
        let response = client.check(request).await.ok()?;
        Some(response.into_inner().status())
    }
}

async fn start(database: TestDatabase) -> Running {
    let config = LeadConfig {
        database: DatabaseUrl::parse(database.url(), "TEST").expect("url"),
        default_organization_name: "Acme Plumbing".into(),
        default_region: DefaultRegion::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(callmesh_lead::serve(config, listener, shutdown.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy();
    Running {
        channel,
        shutdown,
        server,
        _database: database,
    }
}

async fn start_serving(backend: Backend) -> Running {
    let running = start(TestDatabase::create(backend).await).await;
    let serving = wait_until(Duration::from_secs(20), || async {
        running.health().await == Some(ServingStatus::Serving)
    })
    .await;
    assert!(serving, "{backend:?}: lead service never became SERVING");
    running
}

#[tokio::test]
async fn only_callers_with_the_mesh_token_reach_the_service() {
    for backend in backends().await {
        let running = start_serving(backend).await;
        let request = || pb::ResolveOrganizationRequest {
            phone_number: "+12125550100".into(),
        };

        let mut anonymous = LeadServiceClient::new(running.channel.clone());
        let refused = anonymous.resolve_organization(request()).await;
        assert_eq!(
            refused.map(|_| ()).map_err(|s| s.code()),
            Err(Code::Unauthenticated),
            "{backend:?}: a call without a token was served"
        );

        let stranger = MeshCredentials::new("not-the-mesh-token", None).client_auth();
        let mut forged = LeadServiceClient::with_interceptor(running.channel.clone(), stranger);
        let refused = forged.resolve_organization(request()).await;
        assert_eq!(
            refused.map(|_| ()).map_err(|s| s.code()),
            Err(Code::Unauthenticated),
            "{backend:?}: a call with a wrong token was served"
        );

        let answered = running.leads().resolve_organization(request()).await;
        assert!(answered.is_ok(), "{backend:?}: {answered:?}");
        // Health stays open to probes and balancers.
        assert_eq!(running.health().await, Some(ServingStatus::Serving));
        running.shutdown.cancel();
    }
}

fn field_of(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_input_gets_the_right_code_naming_the_field() {
    for backend in backends().await {
        let running = start_serving(backend).await;
        let mut leads = running.leads();

        let invalid_phone = leads
            .find_or_create_lead(pb::FindOrCreateLeadRequest {
                organization_id: DEFAULT_ORGANIZATION_ID.into(),
                phone_number: "555-not-a-number".into(),
                ..Default::default()
            })
            .await
            .expect_err("invalid phone");
        assert_eq!(invalid_phone.code(), Code::InvalidArgument);
        assert!(
            invalid_phone.message().starts_with("phone_number:"),
            "{invalid_phone:?}"
        );
        assert_eq!(field_of(&invalid_phone), vec!["phone_number"]);

        let empty = leads
            .find_or_create_lead(pb::FindOrCreateLeadRequest {
                phone_number: "+14155552671".into(),
                ..Default::default()
            })
            .await
            .expect_err("missing organization");
        assert_eq!(empty.code(), Code::InvalidArgument);
        assert_eq!(field_of(&empty), vec!["organization_id"]);

        let unknown = leads
            .find_or_create_lead(pb::FindOrCreateLeadRequest {
                organization_id: "01900000-0000-7000-8000-00000000beef".into(),
                phone_number: "+14155552671".into(),
                ..Default::default()
            })
            .await
            .expect_err("unknown organization");
        assert_eq!(unknown.code(), Code::NotFound);

        let bad_zone = leads
            .create_organization(pb::CreateOrganizationRequest {
                name: "Bike Shop".into(),
                timezone: "Mars/Olympus".into(),
                ..Default::default()
            })
            .await
            .expect_err("bad time zone");
        assert_eq!(field_of(&bad_zone), vec!["timezone"]);

        let bad_token = leads
            .list_leads(pb::ListLeadsRequest {
                organization_id: DEFAULT_ORGANIZATION_ID.into(),
                page: Some(PageRequest {
                    page_size: 10,
                    page_token: "drop table".into(),
                }),
                ..Default::default()
            })
            .await
            .expect_err("bad token");
        assert_eq!(field_of(&bad_token), vec!["page.page_token"]);

        let no_key = leads
            .apply_analysis(pb::ApplyAnalysisRequest {
                lead_id: "x".into(),
                conversation_id: "conv".into(),
                ..Default::default()
            })
            .await
            .expect_err("missing idempotency key");
        assert_eq!(field_of(&no_key), vec!["idempotency_key"], "{backend:?}");
    }
}

#[tokio::test]
async fn organizations_and_leads_round_trip_with_paging() {
    for backend in backends().await {
        let running = start_serving(backend).await;
        let mut leads = running.leads();
        let organization = leads
            .create_organization(pb::CreateOrganizationRequest {
                idempotency_key: "create-bike-shop".into(),
                name: "Bike Shop".into(),
                timezone: "Europe/London".into(),
                phone_numbers: vec!["+44 20 7946 0958".into()],
                settings: Some(pb::OrganizationSettings {
                    business_hours: "mon-fri 09:00-17:00".into(),
                    human_number: "+44 20 7946 0000".into(),
                    urgent_keywords: vec![" Urgent ".into()],
                    ..Default::default()
                }),
            })
            .await
            .expect("create")
            .into_inner();
        let org = organization.organization.expect("organization");
        assert!(organization.created);
        assert_eq!(org.phone_numbers, ["+442079460958"], "stored in E.164");
        let settings = org.settings.clone().expect("settings");
        assert_eq!(settings.human_number, "+442079460000");
        assert_eq!(settings.urgent_keywords, ["urgent"]);
        assert_eq!(settings.business_hours, "mon-fri 09:00-17:00");
        let bad = leads
            .update_organization_settings(pb::UpdateOrganizationSettingsRequest {
                idempotency_key: String::new(),
                organization_id: org.id.clone(),
                settings: Some(pb::OrganizationSettings {
                    forward_number: "not a number".into(),
                    ..Default::default()
                }),
            })
            .await
            .expect_err("invalid forward number");
        assert_eq!(field_of(&bad), vec!["settings.forward_number"]);
        assert_eq!(org.timezone, "Europe/London");

        let resolved = leads
            .resolve_organization(pb::ResolveOrganizationRequest {
                phone_number: "+1 (800) 555-0199".into(),
            })
            .await
            .expect("resolve")
            .into_inner()
            .organization
            .expect("organization");
        assert!(
            resolved.is_default,
            "{backend:?}: unclaimed numbers belong to the default"
        );

        for i in 0..5 {
            leads
                .find_or_create_lead(pb::FindOrCreateLeadRequest {
                    organization_id: org.id.clone(),
                    phone_number: format!("+1415555020{i}"),
                    name: format!("Lead {i}"),
                    ..Default::default()
                })
                .await
                .expect("create lead");
        }
        let mut names = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = leads
                .list_leads(pb::ListLeadsRequest {
                    organization_id: org.id.clone(),
                    page: Some(PageRequest {
                        page_size: 2,
                        page_token: token.clone(),
                    }),
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_inner();
            pages += 1;
            names.extend(page.leads.into_iter().map(|l| l.name));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(names, ["Lead 0", "Lead 1", "Lead 2", "Lead 3", "Lead 4"]);
        assert_eq!(pages, 3, "{backend:?}");
    }
}

#[tokio::test]
async fn shutdown_is_graceful() {
    let running = start_serving(Backend::Sqlite).await;
    running.shutdown.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(10), running.server)
        .await
        .expect("stops promptly")
        .expect("task");
    assert!(outcome.is_ok(), "{outcome:?}");
}

/// While another replica holds the migration lock, this one answers health NOT_SERVING and
/// refuses RPCs with UNAVAILABLE; once the lock is free it migrates and serves.
#[tokio::test]
async fn not_serving_until_migrations_are_done() {
    if !backends().await.contains(&Backend::Postgres) {
        return;
    }
    use sea_orm::{ConnectionTrait, Database};
    let database = TestDatabase::create(Backend::Postgres).await;
    let key = callmesh_runtime::db::advisory_lock_key(Component::Lead);
    // A single-connection pool, so lock and unlock run on the same session.
    let mut options = sea_orm::ConnectOptions::new(database.url());
    options.max_connections(1);
    let holder = Database::connect(options).await.expect("connect");
    holder
        .execute_unprepared(&format!("SELECT pg_advisory_lock({key})"))
        .await
        .expect("lock");

    let running = start(database).await;
    let not_serving = wait_until(Duration::from_secs(10), || async {
        running.health().await == Some(ServingStatus::NotServing)
    })
    .await;
    assert!(
        not_serving,
        "health must say NOT_SERVING while migrations wait"
    );
    let refused = running
        .leads()
        .get_lead(pb::GetLeadRequest {
            lead_id: "x".into(),
        })
        .await
        .expect_err("not ready");
    assert_eq!(refused.code(), Code::Unavailable);

    holder
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({key})"))
        .await
        .expect("unlock");
    let serving = wait_until(Duration::from_secs(20), || async {
        running.health().await == Some(ServingStatus::Serving)
    })
    .await;
    assert!(serving, "serves once the lock is released");
}

async fn lead_of(leads: &mut LeadServiceClient<MeshChannel>, id: &str) -> pb::Lead {
    leads
        .get_lead(pb::GetLeadRequest { lead_id: id.into() })
        .await
        .expect("get")
        .into_inner()
        .lead
        .expect("lead")
}

/// Each result of a batch: the response, or the error's code and message.
fn answers<R: callmesh_proto::ItemResult>(
    results: Vec<R>,
) -> Vec<Result<R::Response, tonic::Status>> {
    results.into_iter().map(R::into_result).collect()
}

#[tokio::test]
async fn a_batch_answers_each_item_as_it_would_be_answered_alone() {
    for backend in backends().await {
        let running = start_serving(backend).await;
        let mut leads = running.leads();
        let contact = |phone: &str| pb::FindOrCreateLeadRequest {
            organization_id: DEFAULT_ORGANIZATION_ID.into(),
            phone_number: phone.into(),
            ..Default::default()
        };
        let found = leads
            .batch_find_or_create_lead(pb::BatchFindOrCreateLeadRequest {
                items: vec![
                    contact("+14155550101"),
                    contact("not a number"),
                    contact("+14155550102"),
                    contact("(415) 555-0101"),
                ],
            })
            .await
            .expect("batch")
            .into_inner();
        let found = answers(found.results);
        assert_eq!(found.len(), 4, "{backend:?}");
        let first = found[0].as_ref().expect("a new lead");
        assert!(first.created, "{backend:?}");
        let invalid = found[1].as_ref().expect_err("not a phone number");
        assert_eq!(invalid.code(), Code::InvalidArgument, "{backend:?}");
        assert!(invalid.message().starts_with("phone_number"), "{invalid:?}");
        let second = found[2].as_ref().expect("another new lead");
        assert!(second.created);
        // The same number written differently, later in the same batch: the same lead.
        let again = found[3].as_ref().expect("found");
        assert!(!again.created, "{backend:?}");
        let lead_a = first.lead.clone().expect("lead").id;
        assert_eq!(again.lead.clone().expect("lead").id, lead_a);
        let lead_b = second.lead.clone().expect("lead").id;

        // A number with a lead from before, an organization that does not exist, a new number:
        // each answered as alone.
        let mut elsewhere = contact("+14155550105");
        elsewhere.organization_id = "no-such-organization".into();
        let later = leads
            .batch_find_or_create_lead(pb::BatchFindOrCreateLeadRequest {
                items: vec![
                    contact("+1 415 555 0102"),
                    elsewhere,
                    contact("+14155550104"),
                ],
            })
            .await
            .expect("batch")
            .into_inner();
        let later = answers(later.results);
        let known = later[0].as_ref().expect("found");
        assert!(!known.created, "{backend:?}");
        assert_eq!(known.lead.clone().expect("lead").id, lead_b);
        let missing = later[1].as_ref().expect_err("no such organization");
        assert_eq!(missing.code(), Code::NotFound, "{backend:?}: {missing:?}");
        let fresh = later[2].as_ref().expect("a new lead");
        assert!(fresh.created, "{backend:?}");
        let fresh_id = fresh.lead.clone().expect("lead").id;
        assert_eq!(
            lead_of(&mut leads, &fresh_id).await.phone_number,
            "+14155550104"
        );

        let analysis = |key: &str, lead_id: &str| pb::ApplyAnalysisRequest {
            idempotency_key: key.into(),
            lead_id: lead_id.into(),
            conversation_id: format!("conv-{key}"),
            score: 80,
            ..Default::default()
        };
        let applied = leads
            .batch_apply_analysis(pb::BatchApplyAnalysisRequest {
                items: vec![
                    analysis("k1", &lead_a),
                    analysis("k2", "no-such-lead"),
                    analysis("k3", &lead_b),
                    analysis("k1", &lead_a),
                ],
            })
            .await
            .expect("batch")
            .into_inner();
        let applied = answers(applied.results);
        assert!(applied[0].as_ref().expect("applied").applied, "{backend:?}");
        let missing = applied[1].as_ref().expect_err("no such lead");
        assert_eq!(missing.code(), Code::NotFound, "{backend:?}: {missing:?}");
        assert!(applied[2].as_ref().expect("applied").applied);
        // The key repeated: answered, not applied twice.
        assert!(
            !applied[3].as_ref().expect("answered").applied,
            "{backend:?}"
        );
        let stored = lead_of(&mut leads, &lead_a).await;
        assert_eq!(stored.interaction_count, 1, "{backend:?}");
        assert_eq!(stored.score, 80);

        // Nothing fails: the batch is applied at once, in order, as one at a time would be.
        let applied = leads
            .batch_apply_analysis(pb::BatchApplyAnalysisRequest {
                items: vec![
                    analysis("k4", &lead_a),
                    analysis("k5", &lead_a),
                    analysis("k4", &lead_a),
                    analysis("k3", &lead_b),
                ],
            })
            .await
            .expect("batch")
            .into_inner();
        let applied: Vec<(bool, i32)> = answers(applied.results)
            .into_iter()
            .map(|answer| {
                let answer = answer.expect("answered");
                (answer.applied, answer.lead.expect("lead").interaction_count)
            })
            .collect();
        assert_eq!(
            applied,
            [(true, 2), (true, 3), (false, 3), (false, 1)],
            "{backend:?}"
        );
        let stored = lead_of(&mut leads, &lead_a).await;
        assert_eq!(stored.interaction_count, 3, "{backend:?}");

        let too_many = leads
            .batch_find_or_create_lead(pb::BatchFindOrCreateLeadRequest {
                items: vec![contact("+14155550103"); 1_001],
            })
            .await
            .expect_err("too many items");
        assert_eq!(too_many.code(), Code::InvalidArgument);
        assert!(too_many.message().starts_with("items"), "{too_many:?}");
        running.shutdown.cancel();
    }
}
