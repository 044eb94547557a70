//! The OpenAPI document: its header, shared parameters and responses, and the two endpoints
//! that serve it.

use axum::{
    extract::State,
    http::header,
    response::{Html, IntoResponse},
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{
    IntoParams, Modify, OpenApi, PartialSchema,
    openapi::{
        ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi as Doc, Ref, RefOr, ResponseBuilder,
        Schema, Type, extensions::Extensions, path::ParameterIn, schema::AdditionalProperties,
    },
};

use crate::{AppState, error::ErrorBody};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "modelreg",
        description = "A registry of LLM model configurations, compatible with the `/assets/models` API.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "models", description = "Model configurations"),
        (name = "catalog", description = "Prices, token limits and capabilities of known models"),
        (name = "openai", description = "OpenAI-compatible endpoints"),
        (name = "audit", description = "The audit trail"),
        (name = "admin", description = "API tokens of the organization"),
        (name = "auth", description = "The caller's own identity"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Doc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `X-Project-ID`: the project to act in. Required unless the credential is bound to exactly
/// one project.
#[derive(IntoParams)]
#[into_params(names("X-Project-ID"), parameter_in = Header)]
#[allow(dead_code)]
pub struct ProjectHeader(
    /// The project to act in; required unless the credential is bound to exactly one project.
    Option<String>,
);

/// A JSON object whose keys this document does not list: `{"type": "object",
/// "additionalProperties": true}`. (Generated clients read a bare `{"type": "object"}` as an
/// object that holds nothing.)
pub struct JsonObject;

impl PartialSchema for JsonObject {
    fn schema() -> RefOr<Schema> {
        json_object().into()
    }
}

impl utoipa::ToSchema for JsonObject {}

pub(crate) fn json_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
}

/// The `Retry-After` header every 429 carries (`ApiError::into_response` always sets it).
fn retry_after() -> utoipa::openapi::Header {
    let mut header = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        ))
        .description(Some("Seconds to wait before retrying"))
        .build();
    // The header object's own `required` field, which utoipa's `Header` lacks; its flattened
    // extensions map is serialized as is. Generators make a header that is not required
    // optional (`number | undefined`).
    header.extensions = Some(Extensions::from_iter([("required", true)]));
    header
}

/// Adds the errors every authenticated operation can answer (400, 401, 403, 500, 503) and the
/// version, so each operation lists them without repeating them in every annotation.
pub(crate) fn finish(doc: &mut Doc) {
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        // `/auth/` is about the caller alone: no project, so no X-Project-ID to get wrong.
        let about_the_caller = path.starts_with("/auth/");
        let authenticated = about_the_caller
            || path.starts_with("/assets/")
            || path.starts_with("/v1/")
            || path.starts_with("/admin/");
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            let has_params = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query)))
            });
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, description: &str| {
                responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error(description).into());
            };
            if authenticated {
                if !about_the_caller {
                    add(
                        "400",
                        "Malformed request, or X-Project-ID missing or invalid",
                    );
                }
                add("401", "Missing, invalid, expired or revoked credentials");
                add(
                    "403",
                    if about_the_caller {
                        "The credential may not act for the organization it names (org_id, X-Org-Id)"
                    } else {
                        "The role does not allow this action in this project"
                    },
                );
                if has_params {
                    add("422", "A path or query parameter is invalid");
                }
                add(
                    "429",
                    "This credential is over its rate limit; Retry-After says when to retry",
                );
            }
            add(
                "503",
                "Storage is unavailable, the request took longer than the request timeout, or the server is at its connection limit",
            );
            add(
                "500",
                "Internal error; the request id identifies it in the log",
            );
            if let Some(RefOr::T(limited)) = op.responses.responses.get_mut("429") {
                limited
                    .headers
                    .insert("Retry-After".to_owned(), RefOr::T(retry_after()));
            }
        }
    }
}

/// The OpenAPI document
///
/// This document, OpenAPI 3.1, as JSON.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = inline(JsonObject))),
)]
pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json.to_string(),
    )
}

/// API documentation
///
/// A browsable page of this document. It is self-contained: no script or style is fetched
/// from anywhere but this server.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "meta",
    operation_id = "docs",
    security(()),
    responses((status = 200, description = "HTML page", content_type = "text/html", body = String)),
)]
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
