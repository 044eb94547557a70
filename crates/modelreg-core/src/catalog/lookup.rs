//! Which entry a model string names, the way LiteLLM's `get_model_info` resolves one
//! (`litellm/utils.py`, `get_model_info_helper` and `get_potential_model_names`; for a
//! `base_model`, `cost_calculator.select_model_name_for_cost_calc`). docs/catalog.md, "Lookup
//! rules", says what is mirrored and what is not.

use super::{Catalog, CatalogEntry};

/// Providers LiteLLM lets price a model of any provider (`_check_provider_match`): a proxy in
/// front of the real one, and aliases that reuse other providers' rows.
const ANY_PROVIDER: [&str; 3] = ["litellm_proxy", "github", "nadir"];

impl Catalog {
    /// The entry for a model configured with this `litellm_model` and, for a deployment whose
    /// name says nothing of the model (Azure's), this `base_model`.
    ///
    /// The base model comes first: under the deployment's provider (`gpt-4o` on
    /// `azure/my-deployment` is `azure/gpt-4o`), then on its own. Then `litellm_model`: its key
    /// exactly; then, for `provider/rest`, the entry `rest` that the provider serves (or one
    /// LiteLLM treats as the same: `text-completion-openai` rows under `openai`, any
    /// `vertex_ai-*` row under `vertex_ai`, …), the model a dated or fine-tuned name is a
    /// version of, and `provider/provider/rest` for providers whose own ids repeat their name.
    /// Each key is tried exactly, then ignoring case, as LiteLLM does.
    pub fn lookup(&self, litellm_model: &str, base_model: Option<&str>) -> Option<&CatalogEntry> {
        let base_model = base_model.map(str::trim).filter(|b| !b.is_empty());
        if let Some(base_model) = base_model {
            let under_deployment = self
                .provider_prefix(litellm_model)
                .and_then(|(provider, _)| self.resolve_under(base_model, provider));
            if let Some(entry) = under_deployment.or_else(|| self.resolve(base_model)) {
                return Some(entry);
            }
        }
        self.resolve(litellm_model)
    }

    /// A model string on its own.
    fn resolve(&self, model: &str) -> Option<&CatalogEntry> {
        if let Some(entry) = self.find(model) {
            return Some(entry);
        }
        match self.provider_prefix(model) {
            Some((provider, rest)) => self.resolve_routed(provider, rest),
            None => self.find(unversioned(model, None)?),
        }
    }

    /// A base model on a deployment of `provider`. LiteLLM prefixes the deployment's provider
    /// unless the base model names one of its own.
    fn resolve_under(&self, base_model: &str, provider: &str) -> Option<&CatalogEntry> {
        if self.provider_prefix(base_model).is_some() {
            return self.resolve(base_model);
        }
        self.resolve_routed(provider, base_model)
    }

    /// A model id routed through `provider`: LiteLLM's candidate names
    /// (`get_potential_model_names`), each taken only from a row the provider may use.
    fn resolve_routed(&self, provider: &str, id: &str) -> Option<&CatalogEntry> {
        let routed = if family(provider) == "bedrock" {
            bedrock_model_id(id)
        } else {
            id
        };
        let version_of = unversioned(routed, Some(provider));
        let candidates = [
            Some(format!("{provider}/{id}")),
            Some(id.to_owned()),
            (routed != id).then(|| routed.to_owned()),
            version_of.map(|v| format!("{provider}/{v}")),
            version_of.map(str::to_owned),
            Some(format!("{provider}/{provider}/{id}")),
        ];
        candidates
            .into_iter()
            .flatten()
            .find_map(|key| self.served_by(&key, provider))
    }

    /// The entry of `key` if `provider` may use it.
    fn served_by(&self, key: &str, provider: &str) -> Option<&CatalogEntry> {
        self.find(key)
            .filter(|entry| provider_matches(provider, entry.provider.as_deref()))
    }

    /// The entry with this key, or else the one whose key differs only in case
    /// (`get_model_cost_key`).
    fn find(&self, key: &str) -> Option<&CatalogEntry> {
        self.get(key).or_else(|| {
            let i = self.by_folded_key.get(&key.to_lowercase())?;
            Some(&self.entries[*i])
        })
    }

    /// `(provider, rest)` when `model` starts with a provider this catalog knows and a slash.
    fn provider_prefix<'m>(&self, model: &'m str) -> Option<(&'m str, &'m str)> {
        let (provider, rest) = model.split_once('/')?;
        let known = |p: &str| {
            self.providers
                .binary_search_by(|q| q.as_str().cmp(p))
                .is_ok()
        };
        let is_provider =
            known(provider) || known(family(provider)) || ANY_PROVIDER.contains(&provider);
        (is_provider && !rest.is_empty()).then_some((provider, rest))
    }
}

/// The model a versioned name is a version of, as LiteLLM prices it (`_strip_model_name`):
/// a fine-tune `ft:gpt-4o-2024-08-06:org:suffix:id` of `ft:gpt-4o-2024-08-06`, a stable
/// Vertex AI or Gemini version `gemini-2.5-pro-001` of `gemini-2.5-pro`, a dated snapshot
/// `gpt-5.5-2026-04-24` of `gpt-5.5`. None when the name is no version (and on Bedrock, whose
/// ids LiteLLM reads otherwise).
fn unversioned<'m>(name: &'m str, provider: Option<&str>) -> Option<&'m str> {
    let stripped = match provider.map(family) {
        Some("bedrock") => return None,
        Some("vertex_ai" | "gemini" | "databricks") => strip_number_suffix(name),
        _ if name.contains("ft:") => name
            .rmatch_indices(':')
            .nth(2)
            .map_or(name, |(colon, _)| &name[..colon]),
        _ => strip_date_suffix(name),
    };
    (stripped.len() < name.len() && !stripped.is_empty()).then_some(stripped)
}

/// `name` without a trailing `-<digits>`.
fn strip_number_suffix(name: &str) -> &str {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    match name[..name.len() - digits].strip_suffix('-') {
        Some(stripped) if digits > 0 => stripped,
        _ => name,
    }
}

/// `name` without a trailing `-YYYY-MM-DD` (digits in that shape; the day is not checked).
fn strip_date_suffix(name: &str) -> &str {
    let Some(split) = name.len().checked_sub(11) else {
        return name;
    };
    let Some(suffix) = name.get(split..) else {
        return name;
    };
    let b = suffix.as_bytes();
    let dated = b[0] == b'-'
        && b[5] == b'-'
        && b[8] == b'-'
        && [1, 2, 3, 4, 6, 7, 9, 10]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if dated { &name[..split] } else { name }
}

/// LiteLLM's routes on Bedrock, written before the model id (`strip_bedrock_routing_prefix`),
/// each removed once, in this order.
const BEDROCK_ROUTES: [&str; 8] = [
    "bedrock/",
    "chat_completions/",
    "converse/",
    "invoke/",
    "openai/",
    "mantle/",
    "nova-2/",
    "nova/",
];

/// The id AWS receives for a Bedrock model string: without LiteLLM's routes and an AWS region
/// path (`bedrock/converse/us-east-1/anthropic.claude-…` is `anthropic.claude-…`).
fn bedrock_model_id(id: &str) -> &str {
    let mut id = id;
    for route in BEDROCK_ROUTES {
        id = id.strip_prefix(route).unwrap_or(id);
    }
    match id.split_once('/') {
        Some((region, model)) if is_aws_region(region) => model,
        _ => id,
    }
}

/// An AWS region name: `us-east-1`, `ap-southeast-2`, `us-gov-west-1`.
fn is_aws_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let (area, rest) = match parts.as_slice() {
        [area, "gov", rest @ ..] | [area, rest @ ..] => (area, rest),
        [] => return false,
    };
    let [direction, number] = rest else {
        return false;
    };
    area.len() == 2
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && !direction.is_empty()
        && direction.bytes().all(|b| b.is_ascii_lowercase())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a model routed through `requested` may take the prices of a row of `provider`
/// (`_check_provider_match`, with the route-only provider names LiteLLM gives one family).
fn provider_matches(requested: &str, provider: Option<&str>) -> bool {
    let Some(provider) = provider else {
        return true;
    };
    if ANY_PROVIDER.contains(&requested) {
        return true;
    }
    // Azure AI serves Azure's and OpenAI's models; LiteLLM prices them from those rows.
    if requested == "azure_ai" && matches!(family(provider), "azure" | "openai") {
        return true;
    }
    family(requested) == family(provider)
}

/// The provider a row's `litellm_provider` belongs to: LiteLLM files some models under a
/// route-specific name (text completion, a Vertex AI partner family, Bedrock's APIs).
fn family(provider: &str) -> &str {
    match provider {
        "text-completion-openai" => "openai",
        "azure_text" => "azure",
        "text-completion-codestral" => "codestral",
        "text-completion-inception" => "inception",
        "cohere_chat" => "cohere",
        "anthropic_text" => "anthropic",
        p if p.starts_with("vertex_ai") => "vertex_ai",
        p if p.starts_with("fireworks_ai") => "fireworks_ai",
        p if p.starts_with("bedrock") => "bedrock",
        p => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogSource;

    fn key<'c>(catalog: &'c Catalog, model: &str, base_model: Option<&str>) -> Option<&'c str> {
        catalog
            .lookup(model, base_model)
            .map(|entry| entry.key.as_str())
    }

    #[test]
    fn models_find_their_entries_in_the_bundled_catalog() {
        let catalog = Catalog::bundled();
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("gpt-4o", None, Some("gpt-4o")),
            ("openai/gpt-4o", None, Some("gpt-4o")),
            (
                "anthropic/claude-sonnet-4-5",
                None,
                Some("claude-sonnet-4-5"),
            ),
            ("claude-sonnet-4-5", None, Some("claude-sonnet-4-5")),
            // A key that holds the provider is its own entry.
            ("azure/gpt-4o", None, Some("azure/gpt-4o")),
            ("gemini/gemini-2.5-pro", None, Some("gemini/gemini-2.5-pro")),
            (
                "vertex_ai/claude-sonnet-4-5",
                None,
                Some("vertex_ai/claude-sonnet-4-5"),
            ),
            // Rows filed under a family name.
            ("vertex_ai/gemini-2.5-pro", None, Some("gemini-2.5-pro")),
            (
                "openai/gpt-3.5-turbo-instruct",
                None,
                Some("gpt-3.5-turbo-instruct"),
            ),
            (
                "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
                None,
                Some("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            ),
            ("azure_ai/gpt-4o", None, Some("gpt-4o")),
            ("litellm_proxy/gpt-4o", None, Some("gpt-4o")),
            // Model ids that repeat the provider's name.
            (
                "perplexity/glm-5.2",
                None,
                Some("perplexity/perplexity/glm-5.2"),
            ),
            // Versions of a model in the catalog.
            ("gpt-5.5-2026-04-24", None, Some("gpt-5.5")),
            ("openai/gpt-5.5-2026-04-24", None, Some("gpt-5.5")),
            ("gpt-4o-2024-08-06", None, Some("gpt-4o-2024-08-06")),
            (
                "ft:gpt-4o-2024-08-06:my-org::abc123",
                None,
                Some("ft:gpt-4o-2024-08-06"),
            ),
            (
                "openai/ft:gpt-4o-2024-08-06:my-org:suffix:abc123",
                None,
                Some("ft:gpt-4o-2024-08-06"),
            ),
            (
                "gemini/gemini-2.5-pro-001",
                None,
                Some("gemini/gemini-2.5-pro"),
            ),
            // Bedrock's routes and region paths.
            (
                "bedrock/converse/anthropic.claude-3-5-haiku-20241022-v1:0",
                None,
                Some("anthropic.claude-3-5-haiku-20241022-v1:0"),
            ),
            (
                "bedrock/converse/us-east-1/anthropic.claude-3-5-haiku-20241022-v1:0",
                None,
                Some("anthropic.claude-3-5-haiku-20241022-v1:0"),
            ),
            // Case, as LiteLLM: exact first, then ignoring case.
            ("GPT-4O", None, Some("gpt-4o")),
            ("openai/GPT-4o", None, Some("gpt-4o")),
            // Azure deployments are found by their base model, under Azure.
            (
                "azure/my-deployment",
                Some("azure/gpt-4o"),
                Some("azure/gpt-4o"),
            ),
            ("azure/my-deployment", Some("gpt-4o"), Some("azure/gpt-4o")),
            (
                "azure/my-deployment",
                Some("  gpt-4o "),
                Some("azure/gpt-4o"),
            ),
            ("azure/my-deployment", None, None),
            ("azure/my-deployment", Some(""), None),
            // A base model the deployment's provider has no row for is priced on its own.
            ("chatgpt/my-seat", Some("gpt-4o"), Some("gpt-4o")),
            (
                "azure/my-deployment",
                Some("gpt-4o-2099-01-01"),
                Some("azure/gpt-4o"),
            ),
            // An unknown base model leaves the litellm model to decide.
            ("openai/gpt-4o", Some("no-such-model"), Some("gpt-4o")),
            // Not found.
            ("no-such-model", None, None),
            ("openai/no-such-model", None, None),
            ("", None, None),
            ("/", None, None),
            ("openai/", None, None),
            // Another provider's row is not this provider's price.
            ("anthropic/gpt-4o", None, None),
            ("groq/gpt-4o", None, None),
            // A prefix that is no provider is part of the name.
            ("foo/gpt-4o", None, None),
        ];
        for (model, base_model, expected) in cases {
            assert_eq!(
                key(&catalog, model, *base_model),
                *expected,
                "lookup({model:?}, {base_model:?})"
            );
        }
    }

    #[test]
    fn every_key_finds_itself() {
        let catalog = Catalog::bundled();
        for entry in catalog.entries() {
            assert_eq!(key(&catalog, &entry.key, None), Some(entry.key.as_str()));
        }
    }

    #[test]
    fn providers_of_one_family_share_rows() {
        assert!(provider_matches("openai", Some("text-completion-openai")));
        assert!(provider_matches("text-completion-openai", Some("openai")));
        assert!(provider_matches(
            "vertex_ai",
            Some("vertex_ai-anthropic_models")
        ));
        assert!(provider_matches(
            "vertex_ai_beta",
            Some("vertex_ai-language-models")
        ));
        assert!(provider_matches("bedrock", Some("bedrock_converse")));
        assert!(provider_matches("azure", Some("azure_text")));
        assert!(provider_matches("azure_ai", Some("openai")));
        assert!(provider_matches("github", Some("anthropic")));
        assert!(provider_matches("groq", None));
        assert!(!provider_matches("openai", Some("azure")));
        assert!(!provider_matches("azure", Some("azure_ai")));
        assert!(!provider_matches(
            "gemini",
            Some("vertex_ai-language-models")
        ));
    }

    #[test]
    fn versioned_names_strip_to_the_model_they_version() {
        assert_eq!(unversioned("gpt-5.5-2026-04-24", None), Some("gpt-5.5"));
        assert_eq!(
            unversioned("gpt-5.5-2026-04-24", Some("azure")),
            Some("gpt-5.5")
        );
        assert_eq!(unversioned("gpt-5.5-26-04-24", None), None);
        assert_eq!(unversioned("-2026-04-24", None), None);
        assert_eq!(unversioned("gpt-5.5", None), None);
        assert_eq!(
            unversioned("ft:gpt-4o:org:suffix:id", None),
            Some("ft:gpt-4o")
        );
        assert_eq!(
            unversioned("ft:gpt-4o:org::id", Some("openai")),
            Some("ft:gpt-4o")
        );
        assert_eq!(unversioned("ft:gpt-4o:org", None), None);
        assert_eq!(
            unversioned("gemini-2.5-pro-001", Some("gemini")),
            Some("gemini-2.5-pro")
        );
        assert_eq!(
            unversioned("gemini-2.5-pro-001", Some("vertex_ai-language-models")),
            Some("gemini-2.5-pro")
        );
        assert_eq!(unversioned("gemini-2.5-pro-001", None), None);
        assert_eq!(unversioned("gemini-2.5-pro", Some("gemini")), None);
        assert_eq!(unversioned("model-2026-04-24", Some("bedrock")), None);
        assert_eq!(unversioned("é-2026-04-24", None), Some("é"));
        assert_eq!(unversioned("2026-04-24ééé", None), None);
    }

    #[test]
    fn bedrock_model_ids_lose_routes_and_regions() {
        assert_eq!(
            bedrock_model_id("anthropic.claude-x-v1:0"),
            "anthropic.claude-x-v1:0"
        );
        assert_eq!(
            bedrock_model_id("converse/anthropic.claude-x"),
            "anthropic.claude-x"
        );
        assert_eq!(
            bedrock_model_id("invoke/us.anthropic.claude-x"),
            "us.anthropic.claude-x"
        );
        assert_eq!(bedrock_model_id("us-east-1/meta.llama"), "meta.llama");
        assert_eq!(
            bedrock_model_id("converse/us-gov-west-1/openai.gpt-oss"),
            "openai.gpt-oss"
        );
        assert_eq!(bedrock_model_id("us/meta.llama"), "us/meta.llama");
        assert!(is_aws_region("ap-southeast-2"));
        assert!(is_aws_region("us-gov-east-1"));
        for not_a_region in [
            "",
            "us",
            "us-east",
            "us-east-x",
            "usa-east-1",
            "US-EAST-1",
            "us--1",
        ] {
            assert!(!is_aws_region(not_a_region), "{not_a_region}");
        }
    }

    #[test]
    fn a_small_catalog_resolves_by_its_own_providers() {
        let json = br#"{
            "gpt-4o": {"litellm_provider": "openai"},
            "azure/gpt-4o": {"litellm_provider": "azure"},
            "Mixed-Case": {"litellm_provider": "openai"},
            "mixed-case-2": {"litellm_provider": "openai"}
        }"#;
        let source = CatalogSource {
            name: "test".to_owned(),
            version: "0".to_owned(),
            date: "2026-01-01".to_owned(),
            sha256: String::new(),
        };
        let catalog = Catalog::from_cost_map(json, source).unwrap();
        assert_eq!(key(&catalog, "openai/gpt-4o", None), Some("gpt-4o"));
        assert_eq!(key(&catalog, "azure/gpt-4o", None), Some("azure/gpt-4o"));
        assert_eq!(
            key(&catalog, "azure/x", Some("gpt-4o")),
            Some("azure/gpt-4o")
        );
        assert_eq!(key(&catalog, "openai/mixed-case", None), Some("Mixed-Case"));
        assert_eq!(key(&catalog, "MIXED-CASE-2", None), Some("mixed-case-2"));
        assert_eq!(key(&catalog, "azure/mixed-case", None), None);
    }
}
