//! The gateway's OpenAPI 3.1 document, made from the handlers' `#[utoipa::path]` annotations
//! and their request and response types as `router::routes` registers them, so a route cannot
//! be served without being described. Served at `GET /api/openapi.json`, with a reference page
//! at `/api/docs` (Swagger UI, its assets embedded in the binary).
//!
//! To annotate a new route: `#[utoipa::path(...)]` on the handler (method, path, tag, security,
//! parameters, request body, every response with `ErrorBody` for errors), then register it in
//! `router::routes` with `.routes(routes!(handler))`. `gateway/openapi.json` is the reviewed
//! copy: `UPDATE_OPENAPI=1 cargo test -p callmesh-gateway --test openapi` rewrites it.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

pub use crate::error::{ErrorBody, ErrorCode, ErrorDetail};

/// Where the document and the reference page are served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";

/// Security scheme names, as handlers' `security(...)` name them.
pub const ADMIN: &str = "admin_token";
pub const ORGANIZATION: &str = "organization_token";
pub const QUERY_TOKEN: &str = "query_token";
pub const COOKIE_TOKEN: &str = "cookie_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "callmesh gateway",
        description = "The HTTP edge of callmesh: provider webhooks (ElevenLabs, Twilio), the \
operator and admin APIs, live streams (Server-Sent Events), interviews, the dashboard's data \
and health. Every error is JSON: `{\"error\": {\"code\": ..., \"message\": ...}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode, crate::routes::webhooks::WebhookHealth)),
    tags(
        (name = "health", description = "Liveness, readiness and the mesh's health"),
        (name = "webhooks", description = "Provider webhooks: verified, stored in the inbox, answered at once"),
        (name = "operator", description = "Send an SMS, start a call, take a conversation over"),
        (name = "streams", description = "Live updates as Server-Sent Events"),
        (name = "interviews", description = "Interview sessions and evaluations (admin token)"),
        (name = "analysis", description = "Re-running a call's analysis"),
        (name = "inbox", description = "The durable webhook inbox (admin token)"),
        (name = "status", description = "Stored call status (admin token)"),
        (name = "dashboard", description = "The dashboard page and the data it reads"),
        (name = "docs", description = "This document and its reference page"),
    ),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            ADMIN,
            bearer("`Authorization: Bearer $CALLMESH_ADMIN_TOKEN`: every organization, and the admin API."),
        );
        components.add_security_scheme(
            ORGANIZATION,
            bearer("`Authorization: Bearer <organization token>` (`callmesh token create`): that organization's data only."),
        );
        components.add_security_scheme(
            QUERY_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The admin or an organization token in `?token=`, for reads (GET) only: what a browser's EventSource can send.",
            ))),
        );
        components.add_security_scheme(
            COOKIE_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "callmesh_token",
                "The admin or an organization token in the `callmesh_token` cookie, for reads (GET) only.",
            ))),
        );
    }
}

/// The document as served: the registered routes' operations on top of [`ApiDoc`], plus the
/// routes registered outside `routes!` (the document itself and its page).
pub fn finish(mut document: Document) -> Document {
    add_self(&mut document);
    add_post_call_aliases(&mut document);
    add_webhook_health_checks(&mut document);
    document
}

/// Paths that serve the post-call handler too (from the integrations callmesh replaces).
pub const POST_CALL_ALIASES: [&str; 2] = ["/api/convai-webhook", "/webhooks/elevenlabs"];

fn add_post_call_aliases(document: &mut Document) {
    let Some(item) = document
        .paths
        .paths
        .get("/api/webhooks/elevenlabs/post-call")
        .cloned()
    else {
        return;
    };
    for alias in POST_CALL_ALIASES {
        let mut item = item.clone();
        if let Some(operation) = item.post.as_mut() {
            let name = alias.trim_start_matches('/').replace(['/', '-'], "_");
            operation.operation_id = Some(format!("{name}_post_call_alias"));
            operation.summary = Some("Alias of /api/webhooks/elevenlabs/post-call".to_owned());
        }
        document.paths.paths.insert(alias.to_owned(), item);
    }
}

/// `GET` on every webhook path answers a health check (providers' dashboards probe them).
fn add_webhook_health_checks(document: &mut Document) {
    use utoipa::openapi::path::OperationBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    for (path, item) in document.paths.paths.iter_mut() {
        let is_webhook = item
            .post
            .as_ref()
            .and_then(|op| op.tags.as_ref())
            .is_some_and(|tags| tags.iter().any(|t| t == "webhooks"));
        if !is_webhook || item.get.is_some() {
            continue;
        }
        let name = path.trim_start_matches('/').replace(['/', '-'], "_");
        item.get = Some(
            OperationBuilder::new()
                .tag("webhooks")
                .operation_id(Some(format!("{name}_health_check")))
                .summary(Some("Health check of the webhook endpoint"))
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("The endpoint answers")
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("WebhookHealth")))
                                .build(),
                        ),
                )
                .build(),
        );
    }
}

fn add_self(document: &mut Document) {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::{ContentBuilder, ResponseBuilder};
    let json = OperationBuilder::new()
        .tag("docs")
        .operation_id(Some("openapi_document"))
        .summary(Some("This OpenAPI 3.1 document"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The document")
                .content("application/json", ContentBuilder::new().build()),
        )
        .build();
    document.paths.paths.insert(
        DOCUMENT_PATH.to_owned(),
        PathItem::new(HttpMethod::Get, json),
    );
    let page = OperationBuilder::new()
        .tag("docs")
        .operation_id(Some("reference_page"))
        .summary(Some(
            "The API reference page (Swagger UI, served from the binary)",
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The page")
                .content("text/html", ContentBuilder::new().build()),
        )
        .build();
    document.paths.paths.insert(
        format!("{DOCS_PATH}/"),
        PathItem::new(HttpMethod::Get, page),
    );
}

/// `GET /api/openapi.json` and the reference page under `/api/docs/`.
pub fn docs_router<S: Clone + Send + Sync + 'static>(document: Document) -> axum::Router<S> {
    SwaggerUi::new(DOCS_PATH)
        .url(DOCUMENT_PATH, document)
        .config(
            utoipa_swagger_ui::Config::from(DOCUMENT_PATH)
                // Swagger UI would send the document to a public validator.
                .validator_url("none")
                .try_it_out_enabled(true)
                .persist_authorization(true),
        )
        .into()
}
