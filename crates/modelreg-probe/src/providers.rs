//! Each provider's probe: the URL, the authentication and how to read the answer.

use secrecy::ExposeSecret;
use serde_json::Value;

use crate::{Answer, HttpProber};
use modelreg_core::verify::ProbeTarget;

/// How a provider is probed.
enum Kind {
    /// `GET {base}/models` with a bearer key; `base` is the default endpoint, if the provider
    /// has one.
    OpenAi(Option<&'static str>),
    /// `GET {api_base}/openai/models?api-version=…` with an `api-key` header.
    Azure,
    /// `GET {base}/v1/models` with `x-api-key` and `anthropic-version`.
    Anthropic,
    /// `GET {base}/v1beta/models` with `x-goog-api-key`.
    Gemini,
    /// `GET {base}/api/tags`, no authentication unless a key is given.
    Ollama,
    /// `GET https://bedrock.{region}.amazonaws.com/foundation-models`, signed with SigV4.
    Bedrock,
}

fn kind(provider: &str) -> Option<Kind> {
    Some(match provider.to_ascii_lowercase().as_str() {
        "openai" | "text-completion-openai" => Kind::OpenAi(Some("https://api.openai.com/v1")),
        "groq" => Kind::OpenAi(Some("https://api.groq.com/openai/v1")),
        "mistral" => Kind::OpenAi(Some("https://api.mistral.ai/v1")),
        "together_ai" | "together" => Kind::OpenAi(Some("https://api.together.xyz/v1")),
        "deepseek" => Kind::OpenAi(Some("https://api.deepseek.com/v1")),
        "openrouter" => Kind::OpenAi(Some("https://openrouter.ai/api/v1")),
        "fireworks_ai" | "fireworks" => Kind::OpenAi(Some("https://api.fireworks.ai/inference/v1")),
        "perplexity" => Kind::OpenAi(Some("https://api.perplexity.ai")),
        "hosted_vllm" | "vllm" | "lm_studio" | "openai_compatible" | "custom_openai"
        | "xinference" => Kind::OpenAi(None),
        "azure" | "azure_ai" => Kind::Azure,
        "anthropic" => Kind::Anthropic,
        "gemini" | "google_ai_studio" => Kind::Gemini,
        "ollama" | "ollama_chat" => Kind::Ollama,
        "bedrock" | "bedrock_converse" => Kind::Bedrock,
        _ => return None,
    })
}

const ANTHROPIC_VERSION: &str = "2023-06-01";
const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

fn join(base: &str, path: &str) -> Result<url::Url, String> {
    let joined = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url::Url::parse(&joined).map_err(|e| format!("cannot build the probe URL: {e}"))
}

fn key(target: &ProbeTarget, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| target.credentials.get(n))
        .map(|s| s.expose_secret().to_owned())
}

fn need_key(target: &ProbeTarget) -> Result<String, String> {
    key(target, &["api_key", "key", "token"])
        .ok_or_else(|| "the credentials have no api_key to authenticate with".to_owned())
}

/// Probes `target`; `Ok` carries the success message, `Err` the failure's.
pub(crate) async fn probe(p: &HttpProber, target: &ProbeTarget) -> Result<String, String> {
    let provider = target.provider.as_deref().unwrap_or("");
    let kind = match kind(provider) {
        Some(k) => k,
        // Anything else with an api_base is taken as OpenAI-compatible.
        None if target.api_base.is_some() => Kind::OpenAi(None),
        None if provider.is_empty() => {
            return Err("the model has no provider, and no api_base to probe".into());
        }
        None => return Err(format!("there is no probe for provider {provider:?}")),
    };
    let base_or = |default: Option<&str>| -> Result<String, String> {
        target
            .api_base
            .clone()
            .or_else(|| default.map(str::to_owned))
            .ok_or_else(|| format!("provider {provider:?} needs an api_base to be probed"))
    };
    let model = target.model_name();
    let (url, request) = match &kind {
        Kind::OpenAi(default) => {
            let url = join(&base_or(*default)?, "models")?;
            let mut r = p.client.get(url.clone());
            if let Some(k) = key(target, &["api_key", "key", "token"]) {
                r = r.bearer_auth(k);
            } else if default.is_some() {
                return Err(need_key(target).unwrap_err());
            }
            (url, r)
        }
        Kind::Azure => {
            let version = target
                .api_version
                .as_deref()
                .unwrap_or(AZURE_DEFAULT_API_VERSION);
            let mut url = join(&base_or(None)?, "openai/models")?;
            url.query_pairs_mut().append_pair("api-version", version);
            (
                url.clone(),
                p.client.get(url).header("api-key", need_key(target)?),
            )
        }
        Kind::Anthropic => {
            let url = join(&base_or(Some("https://api.anthropic.com"))?, "v1/models")?;
            let r = p
                .client
                .get(url.clone())
                .header("x-api-key", need_key(target)?)
                .header("anthropic-version", ANTHROPIC_VERSION);
            (url, r)
        }
        Kind::Gemini => {
            let mut url = join(
                &base_or(Some("https://generativelanguage.googleapis.com"))?,
                "v1beta/models",
            )?;
            url.query_pairs_mut().append_pair("pageSize", "1000");
            let r = p
                .client
                .get(url.clone())
                .header("x-goog-api-key", need_key(target)?);
            (url, r)
        }
        Kind::Ollama => {
            let url = join(&base_or(Some("http://localhost:11434"))?, "api/tags")?;
            let mut r = p.client.get(url.clone());
            if let Some(k) = key(target, &["api_key"]) {
                r = r.bearer_auth(k);
            }
            (url, r)
        }
        Kind::Bedrock => {
            let region = key(target, &["aws_region_name", "aws_region"])
                .unwrap_or_else(|| "us-east-1".to_owned());
            let default = format!("https://bedrock.{region}.amazonaws.com");
            let url = join(&base_or(Some(&default))?, "foundation-models")?;
            let signed = sigv4_headers(target, &url, &region)?;
            let mut r = p.client.get(url.clone());
            for (name, value) in signed {
                r = r.header(name, value);
            }
            (url, r)
        }
    };
    let host = url.host_str().unwrap_or("?").to_owned();
    let answer = p.send(request, &url, target.timeout).await?;
    let who = if provider.is_empty() {
        "the endpoint"
    } else {
        provider
    };
    // Azure lists models, not deployments: the deployment name cannot be checked there.
    let check = if matches!(kind, Kind::Azure) {
        None
    } else {
        Some(model)
    };
    judge(who, &host, check, answer)
}

/// The SigV4 headers of `GET url` for Bedrock, from the standard credential fields.
fn sigv4_headers(
    target: &ProbeTarget,
    url: &url::Url,
    region: &str,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::{
        http_request::{SignableBody, SignableRequest, SigningSettings, sign},
        sign::v4,
    };
    let access_key =
        key(target, &["aws_access_key_id"]).ok_or("the credentials have no aws_access_key_id")?;
    let secret = key(target, &["aws_secret_access_key"])
        .ok_or("the credentials have no aws_secret_access_key")?;
    let token = key(target, &["aws_session_token"]);
    let identity =
        aws_credential_types::Credentials::new(access_key, secret, token, None, "modelreg").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("bedrock")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}

/// Reads an answer: the status, then the list of models, then whether the model is in it.
fn judge(provider: &str, host: &str, model: Option<&str>, a: Answer) -> Result<String, String> {
    match a.status {
        200..=299 => {}
        401 | 403 => {
            return Err(format!(
                "{provider} rejected the credentials (HTTP {}): the key is wrong, expired or lacks access",
                a.status
            ));
        }
        404 => {
            return Err(format!(
                "{host} has no model list at this path (HTTP 404): check api_base"
            ));
        }
        429 => {
            return Err(format!(
                "{provider} is rate limiting (HTTP 429); the credentials could not be checked"
            ));
        }
        s if s >= 500 => return Err(format!("{provider} failed with HTTP {s}")),
        s => return Err(format!("{provider} answered HTTP {s}")),
    }
    let body: Value = serde_json::from_slice(&a.body)
        .map_err(|_| format!("{provider} answered with a body that is not JSON"))?;
    let names: Vec<String> = ["data", "models", "modelSummaries"]
        .iter()
        .find_map(|k| body.get(k).and_then(Value::as_array))
        .ok_or_else(|| format!("{provider} answered without a model list"))?
        .iter()
        .filter_map(|m| {
            ["id", "name", "model", "modelId"]
                .iter()
                .find_map(|k| m.get(k).and_then(Value::as_str))
        })
        .map(|n| n.trim_start_matches("models/").to_owned())
        .collect();
    let Some(model) = model else {
        return Ok("credentials accepted (the deployment name is not checked)".into());
    };
    let listed = names.iter().any(|n| {
        n == model
            || n.strip_prefix(model)
                .is_some_and(|rest| rest.starts_with(['-', ':', '@']))
    });
    if listed {
        Ok(format!("credentials accepted; {model} is available"))
    } else {
        Err(format!(
            "credentials accepted, but {model} is not among the {} models {provider} lists",
            names.len()
        ))
    }
}
