//! The web console's routes: the redirect from `/`, the app at `/ui/...` with its security
//! headers, the embedded assets with their types and ETags, 404s in our error shape, and the
//! built files themselves (nothing inline that the CSP would have to allow).

mod common;

use std::path::Path;

use std::sync::Arc;

use axum::http::Method;
use common::{Backend, Req, TestApp, services};
use modelreg_api::{Authenticator, ConsoleConfig, JwtConfig, Limits, console};
use modelreg_core::{
    secrets::{Kek, Keyring},
    service::ModelService,
};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

fn get(uri: &str) -> Req {
    Req::new(Method::GET, uri)
}

#[track_caller]
fn assert_secure(r: &common::Resp) {
    assert_eq!(r.header("content-security-policy"), Some(CSP), "{r:?}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}

#[tokio::test]
async fn the_root_redirects_to_the_console() {
    let app = TestApp::sqlite().await;
    let r = app.send(get("/")).await.expect(303);
    assert_eq!(r.header("location"), Some("/ui/"));
    assert_secure(&r);
}

#[tokio::test]
async fn every_console_path_without_an_extension_is_the_app_with_a_strict_csp() {
    let app = TestApp::sqlite().await;
    for path in [
        "/ui",
        "/ui/",
        "/ui/models",
        "/ui/models/gpt-4o-prod",
        "/ui/tokens",
        "/ui/callback?code=x&state=y",
    ] {
        let r = app.send(get(path)).await.expect(200);
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_secure(&r);
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert!(r.header("etag").is_some());
        assert!(
            r.text
                .contains("<script defer src=\"/ui/assets/app.js\"></script>")
        );
        // Not API: no request needs a credential, and none is asked for.
        assert!(r.header("www-authenticate").is_none());
    }
}

#[tokio::test]
async fn assets_are_served_with_their_types_and_revalidated_by_etag() {
    let app = TestApp::sqlite().await;
    for (file, ty) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("swagger-ui-LICENSE.txt", "text/plain; charset=utf-8"),
    ] {
        let uri = format!("/ui/assets/{file}");
        let r = app.send(get(&uri)).await.expect(200);
        assert_eq!(r.header("content-type"), Some(ty), "{file}");
        assert_secure(&r);
        let on_disk = std::fs::read(dist().join(file)).unwrap();
        assert_eq!(r.text.len(), on_disk.len(), "{file}");
        let etag = r.header("etag").expect("etag").to_owned();
        assert!(etag.starts_with('"'), "a strong tag: {etag}");
        let again = app
            .send(get(&uri).header("if-none-match", &etag))
            .await
            .expect(304);
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert!(again.text.is_empty());
        app.send(get(&uri).header("if-none-match", "\"other\""))
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn unknown_files_are_404s_in_the_error_shape() {
    let app = TestApp::sqlite().await;
    for path in [
        "/ui/assets/nope.js",
        "/ui/assets/../Cargo.toml",
        "/ui/assets/",
        "/ui/assets/index.html",
        "/ui/models/x.js",
        "/ui/favicon.ico",
    ] {
        let r = app
            .send(get(path))
            .await
            .expect_error(404, "RESOURCE_NOT_FOUND");
        assert_secure(&r);
        assert!(
            !r.text.contains("nope"),
            "the path is not echoed: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn console_routes_are_not_in_the_openapi_document() {
    let doc = serde_json::to_value(modelreg_api::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.keys().all(|p| p != "/" && !p.starts_with("/ui")));
}

#[tokio::test]
async fn the_issuers_the_console_signs_in_with_may_be_reached_by_the_browser() {
    let app = TestApp::sqlite().await;
    let issuers = [
        "https://id.example.com/realms/acme".to_owned(),
        "https://id.example.com/realms/other".to_owned(),
        "https://login.example.org:8443/".to_owned(),
    ];
    let keyring = Arc::new(Keyring::new(vec![Kek::generate()]).unwrap());
    let models = ModelService::new(app.store.clone(), keyring.clone());
    let auth = Authenticator::new(
        app.store.clone(),
        &JwtConfig {
            oidc_issuers: issuers.to_vec(),
            ..JwtConfig::default()
        },
    );
    let last_used = auth.last_used();
    let services = modelreg_api::Services {
        console: ConsoleConfig::new(&issuers, Some("modelreg-console")),
        ..services(&app.store, models)
    };
    let with_oidc = TestApp {
        router: modelreg_api::router(services, auth, Limits::default()),
        store: app.store.clone(),
        backend: Backend::Shared,
        last_used,
        keyring,
    };
    let r = with_oidc.send(get("/ui/")).await.expect(200);
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("connect-src 'self' https://id.example.com https://login.example.org:8443; "),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
}

fn dist() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/console/dist"))
}

/// Every built file is embedded, and every embedded file is built: a file added to the build
/// and not to `console.rs` would be a 404 in the browser.
#[test]
fn every_built_file_is_embedded() {
    let mut built: Vec<String> = std::fs::read_dir(dist())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    built.sort();
    let mut embedded: Vec<String> = console::asset_names().map(str::to_owned).collect();
    embedded.sort();
    assert_eq!(built, embedded);
}

/// The CSP allows no inline script, so none may be needed: no `<script>` with a body, no
/// `on…=` handler attribute, no `javascript:` URL, no `style=` attribute or `<style>` element
/// in any HTML file of the build. (The app renders through the DOM: Preact sets properties
/// and listeners, never handler attributes.)
#[test]
fn no_built_file_needs_inline_script_or_style() {
    let handler = |text: &str| -> Option<String> {
        let lower = text.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        lower.match_indices(" on").find_map(|(i, _)| {
            let rest = &lower[i + 3..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let after = rest[name.len()..].trim_start();
            (!name.is_empty() && after.starts_with('=') && bytes[i] == b' ')
                .then(|| lower[i..(i + 40).min(lower.len())].to_owned())
        })
    };
    for entry in std::fs::read_dir(dist()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".html") {
            continue;
        }
        let html = std::fs::read_to_string(&path).unwrap();
        let lower = html.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(i) = rest.find("<script") {
            let tag_end = rest[i..].find('>').expect("a closed tag") + i;
            let tag = &rest[i..=tag_end];
            assert!(tag.contains(" src="), "{name}: a script without src: {tag}");
            let body_end = rest[tag_end..].find("</script>").expect("closed") + tag_end;
            assert!(
                rest[tag_end + 1..body_end].trim().is_empty(),
                "{name}: an inline script body"
            );
            rest = &rest[body_end..];
        }
        assert!(handler(&html).is_none(), "{name}: {:?}", handler(&html));
        assert!(!lower.contains("javascript:"), "{name}");
        assert!(!lower.contains(" style="), "{name}: a style attribute");
        assert!(!lower.contains("<style"), "{name}: a style element");
    }
}
