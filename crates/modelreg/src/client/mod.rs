//! The command-line client of a running server: `login`, `models …`, `export`, `import`.
//!
//! Settings come from `--server`, `--token` and `--project`, then `MODELREG_SERVER`,
//! `MODELREG_TOKEN` and `MODELREG_PROJECT`, then the profile `modelreg login` wrote.

pub mod interop;
pub mod models;
pub mod output;
pub mod profile;
mod yaml;

use std::{fmt, time::Duration};

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use output::{Format, to_yaml};

/// Exit statuses of the client commands (documented in `modelreg --help`).
pub mod exit {
    /// The server refused the request, or a verification failed.
    pub const REFUSED: u8 = 1;
    /// Bad usage: a flag or file the client could not use (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// The server could not be reached.
    pub const UNREACHABLE: u8 = 3;
}

/// How to reach the server.
#[derive(Args, Clone, Debug, Default)]
pub struct ClientArgs {
    /// Server URL, e.g. http://127.0.0.1:8080 [env: MODELREG_SERVER] [default: the profile's]
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// API token or JWT [env: MODELREG_TOKEN] [default: the profile's]. Prefer the environment
    /// or `modelreg login`: a flag shows in the process list.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Project (X-Project-ID) [env: MODELREG_PROJECT] [default: the profile's]
    #[arg(long, global = true)]
    pub project: Option<String>,
    /// Profile of the profile file to use [env: MODELREG_PROFILE] [default: default]
    #[arg(long, global = true)]
    pub profile: Option<String>,
}

impl ClientArgs {
    /// The profile to use: `--profile`, else `MODELREG_PROFILE`, else `default`.
    pub fn profile_name(&self) -> String {
        self.profile
            .clone()
            .or_else(|| env("MODELREG_PROFILE"))
            .unwrap_or_else(|| profile::DEFAULT.to_owned())
    }
}

/// An error of a client command, with the exit status it ends the process with.
#[derive(Debug)]
pub struct ClientError {
    pub exit: u8,
    pub message: String,
    /// The HTTP status of a refusal by the server.
    pub status: Option<u16>,
}

impl ClientError {
    pub fn usage(message: impl Into<String>) -> Self {
        ClientError {
            exit: exit::USAGE,
            message: message.into(),
            status: None,
        }
    }
    pub fn refused(message: impl Into<String>) -> Self {
        ClientError {
            exit: exit::REFUSED,
            message: message.into(),
            status: None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

pub type Result<T> = std::result::Result<T, ClientError>;

/// The resolved settings.
#[derive(Clone)]
pub struct Settings {
    pub server: String,
    token: String,
    pub project: Option<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("server", &self.server)
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    /// Flags, then the environment, then the profile file.
    pub fn resolve(args: &ClientArgs) -> Result<Settings> {
        let profile_name = args.profile_name();
        let stored = profile::load(&profile_name)?;
        let pick = |flag: &Option<String>, var: &str, from_profile: Option<String>| {
            flag.clone().or_else(|| env(var)).or(from_profile)
        };
        let server = match (&args.server, env("MODELREG_SERVER"), &stored) {
            (Some(flag), _, _) => server_url(flag, "--server")?,
            (None, Some(var), _) => server_url(&var, "MODELREG_SERVER")?,
            (None, None, Some(p)) => server_url(
                &p.server,
                &format!(
                    "the server of profile '{profile_name}' in {}",
                    profile::path()?.display()
                ),
            )?,
            (None, None, None) => {
                return Err(ClientError::usage(
                    "no server: pass --server, set MODELREG_SERVER, or run `modelreg login`",
                ));
            }
        };
        let token = pick(
            &args.token,
            "MODELREG_TOKEN",
            stored.as_ref().map(|p| p.token.clone()),
        )
        .ok_or_else(|| {
            ClientError::usage(
                "no token: pass --token, set MODELREG_TOKEN, or run `modelreg login`",
            )
        })?;
        let project = pick(
            &args.project,
            "MODELREG_PROJECT",
            stored.and_then(|p| p.project),
        );
        Ok(Settings {
            server,
            token,
            project,
        })
    }
}

/// The server's URL from `from` (a flag, a variable or a profile): http or https, with a host.
/// A bare `host:port` is refused rather than completed with http://, since a token sent to a
/// remote host in clear text is a leak, and guessing https fails every local server: the
/// message says what to write.
fn server_url(raw: &str, from: &str) -> Result<String> {
    let s = raw.trim().trim_end_matches('/');
    let no_scheme = || {
        ClientError::usage(format!(
            "{from}: {s:?} has no scheme: write http://{s} (or https://{s})"
        ))
    };
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(s.to_owned()),
        // `localhost:8080` parses, as a URL of scheme "localhost".
        Ok(_) if !s.contains("://") => Err(no_scheme()),
        Err(url::ParseError::RelativeUrlWithoutBase) => Err(no_scheme()),
        Ok(u) => Err(ClientError::usage(format!(
            "{from}: {s:?} must be an http:// or https:// URL with a host, not {}:",
            u.scheme()
        ))),
        Err(e) => Err(ClientError::usage(format!(
            "{from}: {s:?} is not a URL: {e}"
        ))),
    }
}

impl Settings {
    /// The settings as a profile to save.
    pub fn into_profile(self) -> profile::Profile {
        profile::Profile {
            server: self.server,
            token: self.token,
            project: self.project,
        }
    }
}

/// A response of the server that was a success.
pub struct Reply {
    pub etag: Option<String>,
    pub body: Value,
}

/// A client of one server.
pub struct Client {
    http: reqwest::Client,
    settings: Settings,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("modelreg-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ClientError::usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, settings })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The URL of `path` (already percent-encoded) with `query` pairs.
    fn url(&self, path: &str, query: &[(String, String)]) -> Result<url::Url> {
        let mut url = url::Url::parse(&format!("{}{path}", self.settings.server))
            .map_err(|e| ClientError::usage(format!("invalid server URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request; an error answer becomes a readable [`ClientError`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply> {
        let url = self.url(path, query)?;
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(&self.settings.token);
        if let Some(p) = &self.settings.project {
            req = req.header("x-project-id", p);
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| ClientError {
            exit: exit::UNREACHABLE,
            message: format!(
                "cannot reach the server at {}: {}",
                self.settings.server,
                error_chain(&e)
            ),
            status: None,
        })?;
        let status = res.status();
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = res.bytes().await.map_err(|e| ClientError {
            exit: exit::UNREACHABLE,
            message: format!("the connection broke while reading the answer: {e}"),
            status: None,
        })?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into())
            })
        };
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(Reply { etag, body });
        }
        let mut error = ClientError {
            status: Some(status.as_u16()),
            ..ClientError::refused(describe_error(status, &body))
        };
        // A token for several projects and no project given: a setting is missing, so it is
        // a usage error, and the message says where the setting goes.
        let message = body["error"]["message"].as_str().unwrap_or("");
        if status == StatusCode::BAD_REQUEST
            && self.settings.project.is_none()
            && message.contains("X-Project-ID header is required")
        {
            error.exit = exit::USAGE;
            error.message.push_str(
                "\n  hint: say which project with --project NAME or MODELREG_PROJECT=NAME, or \
                 keep one in the profile with `modelreg login --project NAME`",
            );
        }
        Err(error)
    }

    pub async fn get(&self, path: &str, query: &[(String, String)]) -> Result<Reply> {
        self.send(Method::GET, path, query, None, None).await
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Reply> {
        self.send(Method::POST, path, &[], body, None).await
    }

    pub async fn patch(&self, path: &str, body: &Value, if_match: Option<&str>) -> Result<Reply> {
        self.send(Method::PATCH, path, &[], Some(body), if_match)
            .await
    }

    pub async fn delete(&self, path: &str, if_match: Option<&str>) -> Result<Reply> {
        self.send(Method::DELETE, path, &[], None, if_match).await
    }
}

/// An error source chain in one line (reqwest hides the cause behind "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `CODE (status): message`, then each invalid field on its own line.
pub fn describe_error(status: StatusCode, body: &Value) -> String {
    let Some(error) = body.get("error") else {
        return format!("the server answered {status}: {}", compact(body));
    };
    let code = error["code"].as_str().unwrap_or("ERROR");
    let message = error["message"].as_str().unwrap_or("");
    let mut out = format!("{code} ({}): {message}", status.as_u16());
    for d in body["detail"].as_array().into_iter().flatten() {
        let msg = d["msg"].as_str().unwrap_or("");
        if message.contains(msg) {
            continue;
        }
        let loc: Vec<String> = d["loc"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .filter(|p| p != "body")
            .collect();
        out.push_str(&format!("\n  - {}: {msg}", loc.join(".")));
    }
    if let Some(id) = error["request_id"].as_str() {
        out.push_str(&format!("\n  (request id {id})"));
    }
    out
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A path segment, percent-encoded.
pub fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_read_as_code_message_and_fields() {
        let body = json!({
            "error": {"code": "VALIDATION_ERROR", "status": 422, "message": "invalid body: rpm",
                      "details": {}, "request_id": "req-1"},
            "detail": [{"loc": ["body", "rpm"], "msg": "must be at least 1", "type": "value_error"}]
        });
        assert_eq!(
            describe_error(StatusCode::UNPROCESSABLE_ENTITY, &body),
            "VALIDATION_ERROR (422): invalid body: rpm\n  - rpm: must be at least 1\n  (request id req-1)"
        );
        assert_eq!(
            describe_error(StatusCode::BAD_GATEWAY, &json!("upstream down")),
            "the server answered 502 Bad Gateway: upstream down"
        );
    }

    #[test]
    fn a_server_is_an_http_url_with_a_host() {
        assert_eq!(
            server_url(" https://reg.example.com/base/ ", "--server").unwrap(),
            "https://reg.example.com/base"
        );
        assert_eq!(
            server_url("http://[::1]:8080", "--server").unwrap(),
            "http://[::1]:8080"
        );
        for (bare, suggested) in [
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("localhost:8080", "http://localhost:8080"),
            ("reg.example.com", "http://reg.example.com"),
        ] {
            let e = server_url(bare, "--server").unwrap_err();
            assert_eq!(e.exit, exit::USAGE);
            assert!(e.message.contains(suggested), "{}", e.message);
        }
        for bad in ["ftp://example.com", "http://", "file:///tmp/x"] {
            assert_eq!(
                server_url(bad, "--server").unwrap_err().exit,
                exit::USAGE,
                "{bad}"
            );
        }
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(segment("gpt-4o"), "gpt-4o");
    }
}
