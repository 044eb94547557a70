//! `GET /ui/config.json`: what the console needs to know before anyone signs in: where it
//! may send a person to sign in (OpenID Connect, authorization code with PKCE) and which
//! server version it talks to.
//!
//! It is unauthenticated, as it must be to show a sign-in page, so it carries only what is
//! public by nature: issuer URLs (every OIDC client learns them) and the console's client id
//! (a public client's id is sent through the browser on every sign-in). It never carries a
//! secret: `ConsoleConfig` is built from those two settings alone and holds nothing else.
//!
//! It is a file of the console, not an operation of the API, so it stays out of the OpenAPI
//! document, as the console's other files do; the console reads it as a static asset.

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::AppState;

/// The path the console reads its configuration from.
pub const PATH: &str = "/ui/config.json";

/// The console's public settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleConfig {
    oidc: Vec<OidcClient>,
}

/// An identity provider the console may sign in with, as the console's client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcClient {
    /// The issuer URL, as configured in `oidc_issuers`; its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The console's client id at that issuer (a public client: no secret).
    pub client_id: String,
}

impl ConsoleConfig {
    /// Sign-in through each of `issuers` with `client_id`. Without a client id, or without
    /// issuers, the console offers no sign-in through a provider (a pasted token still works).
    pub fn new(issuers: &[String], client_id: Option<&str>) -> ConsoleConfig {
        let client_id = client_id.map(str::trim).filter(|c| !c.is_empty());
        let oidc = match client_id {
            Some(client_id) => issuers
                .iter()
                .map(|i| i.trim())
                .filter(|i| !i.is_empty())
                .map(|issuer| OidcClient {
                    issuer: issuer.to_owned(),
                    client_id: client_id.to_owned(),
                })
                .collect(),
            None => Vec::new(),
        };
        ConsoleConfig { oidc }
    }

    /// The providers the console may sign in with.
    pub fn oidc(&self) -> &[OidcClient] {
        &self.oidc
    }
}

#[derive(Serialize)]
struct Body<'a> {
    oidc: &'a [OidcClient],
    version: &'static str,
}

/// The console's configuration: `{"oidc": [{"issuer", "client_id"}], "version"}`. Not
/// authenticated, not in the OpenAPI document (see the module's comment). `no-cache`, so a
/// console loaded after a change of settings sees it.
pub async fn config_json(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Json(Body {
            oidc: state.console.oidc(),
            version: env!("CARGO_PKG_VERSION"),
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_needs_both_issuers_and_a_client_id() {
        let issuers = vec![
            "https://kc.example.com/realms/acme".to_owned(),
            " https://login.example.org/ ".to_owned(),
            String::new(),
        ];
        assert_eq!(
            ConsoleConfig::new(&issuers, Some(" modelreg-console ")).oidc(),
            [
                OidcClient {
                    issuer: "https://kc.example.com/realms/acme".into(),
                    client_id: "modelreg-console".into(),
                },
                OidcClient {
                    issuer: "https://login.example.org/".into(),
                    client_id: "modelreg-console".into(),
                },
            ]
        );
        assert!(ConsoleConfig::new(&issuers, None).oidc().is_empty());
        assert!(ConsoleConfig::new(&issuers, Some("  ")).oidc().is_empty());
        assert!(ConsoleConfig::new(&[], Some("c")).oidc().is_empty());
    }
}
