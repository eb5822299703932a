//! The OpenAPI document is a reviewed file: `gateway/openapi.json` must be exactly what the
//! gateway serves at `/api/openapi.json`, so a change to the API shows up in review as a change
//! to its description. After changing a route, regenerate it with
//! `UPDATE_OPENAPI=1 cargo test -p callmesh-gateway --test openapi` and commit the diff.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

fn generated() -> String {
    let document = callmesh_gateway::openapi_document();
    let mut text = serde_json::to_string_pretty(&document).expect("the document serializes");
    text.push('\n');
    text
}

#[test]
fn committed_document_is_the_generated_one() {
    let path = committed_path();
    let generated = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, &generated).expect("write gateway/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "gateway/openapi.json is not the document the gateway serves (first difference at \
             line {}).\nThe API changed: regenerate the file with\n\n    \
             UPDATE_OPENAPI=1 cargo test -p callmesh-gateway --test openapi\n\nand commit the \
             diff with the change, so reviewers see what the API now promises.",
            line + 1
        );
    }
}

#[test]
fn document_is_openapi_3_1_with_the_error_shape_and_auth_schemes() {
    let document: serde_json::Value =
        serde_json::from_str(&generated()).expect("the document is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = &document["components"]["securitySchemes"];
    for scheme in [
        "admin_token",
        "organization_token",
        "query_token",
        "cookie_token",
    ] {
        assert!(schemes.get(scheme).is_some(), "{scheme} missing: {schemes}");
    }
    let error = &document["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    assert!(document["paths"]["/api/health"]["get"].is_object());
}
