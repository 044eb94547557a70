//! Verification (SPEC §6): one cheap, real, authenticated call to the model's provider. The
//! call itself is made by a `Prober` (the `modelreg-probe` crate); this module holds what it
//! is given and what it answers.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::secrets::Credentials;

/// What a probe needs: where the model is and how to authenticate. The credentials are
/// resolved (references replaced by their values).
#[derive(Debug)]
pub struct ProbeTarget {
    /// The provider, as stored or inferred, e.g. `openai`, `azure`, `ollama`.
    pub provider: Option<String>,
    pub litellm_model: String,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    pub timeout: Duration,
    pub credentials: Credentials,
}

impl ProbeTarget {
    /// The model's name at its provider: the LiteLLM string after the provider prefix
    /// (`openai/gpt-4o` → `gpt-4o`, `openrouter/anthropic/claude-3` → `anthropic/claude-3`).
    pub fn model_name(&self) -> &str {
        match (&self.provider, self.litellm_model.split_once('/')) {
            (Some(p), Some((prefix, rest))) if p == prefix => rest,
            (None, Some((_, rest))) => rest,
            _ => &self.litellm_model,
        }
    }
}

/// The answer of a verification. A rejected key, a timeout or an unreachable host is
/// `verified: false` with a message that says which; it is never an HTTP error of ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProbeOutcome {
    pub verified: bool,
    /// What happened, in words; never contains a secret.
    pub message: String,
    /// How long the call took.
    pub latency_ms: u64,
}

impl ProbeOutcome {
    pub fn failed(message: impl Into<String>) -> Self {
        ProbeOutcome {
            verified: false,
            message: message.into(),
            latency_ms: 0,
        }
    }
}

#[async_trait]
pub trait Prober: Send + Sync {
    async fn probe(&self, target: &ProbeTarget) -> ProbeOutcome;
}

/// Default timeout of a probe when the model sets none.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a probe waits, whatever the model's `timeout` (which is for the gateway's calls and
/// may be hours): a verification stays inside the server's request timeout (30 s by default),
/// and the background checker's slots are never held for long.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;

    fn target(provider: Option<&str>, model: &str) -> ProbeTarget {
        ProbeTarget {
            provider: provider.map(str::to_owned),
            litellm_model: model.into(),
            api_base: None,
            api_version: None,
            timeout: DEFAULT_PROBE_TIMEOUT,
            credentials: serde_json::from_str(r#"{"api_key":"k"}"#).unwrap(),
        }
    }

    #[test]
    fn model_names() {
        assert_eq!(
            target(Some("openai"), "openai/gpt-4o").model_name(),
            "gpt-4o"
        );
        assert_eq!(
            target(Some("openrouter"), "openrouter/anthropic/claude-3").model_name(),
            "anthropic/claude-3"
        );
        assert_eq!(target(Some("openai"), "gpt-4o").model_name(), "gpt-4o");
        assert_eq!(
            target(Some("my-gw"), "azure/deploy").model_name(),
            "azure/deploy"
        );
    }
}
