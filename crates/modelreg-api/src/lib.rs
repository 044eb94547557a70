//! The HTTP API of modelreg: the router, its extractors and handlers, and the OpenAPI
//! document generated from them.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod console;
pub mod console_config;
pub mod error;
pub mod export;
pub mod extract;
mod health;
mod jwks;
pub mod limits;
pub mod me;
pub mod metrics;
mod middleware;
pub mod models;
pub mod openai;
pub mod openapi;
mod server;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{Method, StatusCode, Uri},
    routing::get,
};
use modelreg_core::{service::ModelService, store::ServerStore, tokens::TokenService};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use auth::{Authenticator, JwtConfig, LastUsed, ServiceAccount};
pub use console_config::ConsoleConfig;
pub use error::ApiError;
pub use limits::Limits;
pub use middleware::X_REQUEST_ID;
pub use server::serve;

/// The git commit this build was made from (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("MODELREG_GIT_COMMIT");

/// What every handler can reach: services and narrow parts of the store, never the whole
/// `Store` nor its `MaintenanceStore`.
#[derive(Clone)]
pub struct AppState {
    pub models: ModelService,
    pub tokens: TokenService,
    /// Readiness and the metrics' counts: the server's own reads, no tenant's data.
    pub server: Arc<dyn ServerStore>,
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<metrics::Metrics>,
    pub limiter: Arc<limits::RateLimiter>,
    /// Rendered list pages, valid while their project's generation stands.
    pub lists: Arc<models::list_cache::ListCache>,
    /// Whole-list bodies (`/v1/models`, the LiteLLM export), kept as list pages are.
    pub bodies: Arc<models::list_cache::ListCache>,
    /// What the console is told before sign-in (`/ui/config.json`): public settings only.
    pub console: Arc<ConsoleConfig>,
    openapi_json: Arc<str>,
}

/// Every route, each registered together with its OpenAPI entry so none escapes the document.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(
            models::list::list_models,
            models::create::create_model
        ))
        .routes(routes!(
            models::get::get_model,
            models::update::put_model,
            models::update::patch_model,
            models::delete::delete_model
        ))
        .routes(routes!(models::batch::batch_models))
        .routes(routes!(models::credentials::patch_credentials))
        .routes(routes!(models::verify::verify_unsaved))
        .routes(routes!(models::verify::verify_stored))
        .routes(routes!(catalog::list_catalog))
        .routes(routes!(catalog::list_catalog_changes))
        .routes(routes!(catalog::settle_catalog_change))
        .routes(routes!(catalog::get_catalog_entry))
        .routes(routes!(openai::list_models))
        .routes(routes!(openai::retrieve_model))
        .routes(routes!(export::export_litellm))
        .routes(routes!(audit::history))
        .routes(routes!(audit::audit_log))
        .routes(routes!(admin::create_token, admin::list_tokens))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(me::me))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs))
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_router().split_for_parts();
    openapi::finish(&mut doc);
    doc
}

/// The services the handlers call, each over its own part of the store.
pub struct Services {
    pub models: ModelService,
    pub tokens: TokenService,
    pub server: Arc<dyn ServerStore>,
    /// The console's public settings, served unauthenticated at `/ui/config.json`.
    pub console: ConsoleConfig,
}

/// The application: routes, body limit, request ids, metrics and the error shape, with
/// `limits` (for tests, `Limits::generous()` leaves rate limiting off).
pub fn router(mut services: Services, auth: Authenticator, limits: Limits) -> Router {
    let metrics = Arc::new(metrics::Metrics::new());
    services.models = services
        .models
        .with_verification_hook(metrics.verification_hook());
    router_with_metrics(services, auth, metrics, limits)
}

/// The application, counting into `metrics`. The model service should already report its
/// verifications to them (`Metrics::verification_hook`), so that a background checker built
/// on the same service is counted too.
pub fn router_with_metrics(
    services: Services,
    auth: Authenticator,
    metrics: Arc<metrics::Metrics>,
    limits: Limits,
) -> Router {
    let (routes, mut doc) = api_router().split_for_parts();
    openapi::finish(&mut doc);
    let routes = routes.merge(console::routes(&services.console));
    let Services {
        models,
        tokens,
        server,
        console,
    } = services;
    let state = AppState {
        models,
        tokens,
        server,
        auth: Arc::new(auth),
        metrics: metrics.clone(),
        limiter: limits::RateLimiter::shared(&limits),
        lists: Arc::new(models::list_cache::ListCache::new(&metrics.list_pages)),
        bodies: Arc::new(models::list_cache::ListCache::for_bodies(
            &metrics.list_pages,
        )),
        console: Arc::new(console),
        openapi_json: doc
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
            .into(),
    };
    routes
        // A file of the console, not an API operation: outside the OpenAPI document.
        .route(console_config::PATH, get(console_config::config_json))
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            middleware::Context::new(metrics, limits),
            middleware::request_context,
        ))
        .with_state(state)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        format!("no route for {method} {}", uri.path()),
    )
}
