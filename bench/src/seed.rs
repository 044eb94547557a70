//! Seeding: N realistic models in the main project (`default` / `main`), and a tenth as many
//! spread over other organizations and projects, written through the store's own batched
//! insert (each with its audit event and sealed credentials), one transaction per batch.
//!
//! Every model is a pure function of its index, so a growth run can add models 10k..100k to a
//! database that holds 0..10k, and the load generator knows every `resource_uri` without
//! asking. Planted words make the search scenarios match known fractions: `zephyr` in 1% of
//! descriptions, `quasar` in 0.01%.

use std::time::Instant;

use anyhow::Context;
use modelreg_core::{
    audit::{AuditAction, AuditEntry},
    catalog::{Catalog, CatalogLink},
    model::{Mode, ModelFields, Status},
    resource_uri::ResourceUri,
    secrets::{Binding, Credentials, Keyring},
    store::{NewModel, Store},
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};

/// The organization of the server's bootstrap token, which the load generator uses.
pub const MAIN_ORG: &str = "default";
pub const MAIN_PROJECT: &str = "main";
/// The word in about 1% of descriptions.
pub const COMMON_WORD: &str = "zephyr";
/// The word in about 0.01% of descriptions.
pub const RARE_WORD: &str = "quasar";
/// Two tags whose intersection holds about 20% of models.
pub const TWO_TAGS: &str = "prod,eu";

const BATCH: usize = 500;

/// The `resource_uri` of model `i` of the main project.
pub fn uri(i: u64) -> String {
    format!("m-{i:07}")
}

pub fn scope(org: &str, project: &str) -> TenantScope {
    TenantScope::new(
        OrgId::parse(org).expect("valid org"),
        ProjectId::parse(project).expect("valid project"),
    )
}

/// The other tenants, each holding an equal share of the extra tenth.
const OTHERS: [(&str, &str); 8] = [
    ("default", "experiments"),
    ("default", "ml-platform"),
    ("globex", "main"),
    ("globex", "search"),
    ("initech", "main"),
    ("initech", "support-bots"),
    ("umbrella", "main"),
    ("umbrella", "research"),
];

/// (provider, litellm model, display name, mode)
pub const FAMILIES: [(&str, &str, &str, Mode); 14] = [
    ("openai", "openai/gpt-4o", "GPT-4o", Mode::Chat),
    ("openai", "openai/gpt-4o-mini", "GPT-4o mini", Mode::Chat),
    ("openai", "openai/o3-mini", "o3-mini", Mode::Chat),
    (
        "openai",
        "openai/text-embedding-3-large",
        "Embedding 3 large",
        Mode::Embedding,
    ),
    (
        "openai",
        "openai/whisper-1",
        "Whisper",
        Mode::AudioTranscription,
    ),
    (
        "openai",
        "openai/dall-e-3",
        "DALL-E 3",
        Mode::ImageGeneration,
    ),
    (
        "anthropic",
        "anthropic/claude-3-5-sonnet",
        "Claude 3.5 Sonnet",
        Mode::Chat,
    ),
    (
        "anthropic",
        "anthropic/claude-3-haiku",
        "Claude 3 Haiku",
        Mode::Chat,
    ),
    ("azure", "azure/gpt-4o-deploy", "Azure GPT-4o", Mode::Chat),
    (
        "bedrock",
        "bedrock/anthropic.claude-3-sonnet",
        "Bedrock Claude",
        Mode::Chat,
    ),
    (
        "gemini",
        "gemini/gemini-1.5-pro",
        "Gemini 1.5 Pro",
        Mode::Chat,
    ),
    ("ollama", "ollama/llama3", "Llama 3 (local)", Mode::Chat),
    (
        "mistral",
        "mistral/mistral-large",
        "Mistral Large",
        Mode::Chat,
    ),
    (
        "groq",
        "groq/llama3-70b",
        "Llama 3 70B on Groq",
        Mode::Completion,
    ),
];

pub const TEAMS: [&str; 12] = [
    "payments", "search", "support", "growth", "risk", "legal", "ml", "docs", "sales", "infra",
    "mobile", "data",
];
/// Environments (the first tag, and a word of the name) and their weights.
pub const ENVS: [(&str, u32); 3] = [("prod", 50), ("staging", 30), ("dev", 20)];
/// Regions (the second tag, and a word of the description) and their weights.
pub const REGIONS: [(&str, u32); 3] = [("eu", 40), ("us", 40), ("apac", 20)];
pub const PURPOSES: [&str; 6] = [
    "customer chat",
    "document summaries",
    "ticket triage",
    "code review",
    "nightly batch scoring",
    "internal assistant",
];

fn pick<T: Copy>(rng: &mut fastrand::Rng, weighted: &[(T, u32)]) -> T {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut n = rng.u32(0..total);
    for (v, w) in weighted {
        if n < *w {
            return *v;
        }
        n -= w;
    }
    weighted[0].0
}

/// The fields of model `i` (deterministic).
pub fn fields(i: u64) -> ModelFields {
    catalogued(i).0
}

/// The fields of model `i`, with the prices, limits and capabilities the bundled catalog
/// fills for its model string (as a create with none of them given does), and its link.
pub fn catalogued(i: u64) -> (ModelFields, CatalogLink) {
    let mut fields = own_fields(i);
    let entry = Catalog::bundled().entry_for(&fields);
    let link = CatalogLink::filled(&mut fields, &[], entry.as_ref());
    (fields, link)
}

/// The fields of model `i` a user gives.
fn own_fields(i: u64) -> ModelFields {
    let mut rng = fastrand::Rng::with_seed(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (provider, model, display, mode) = FAMILIES[rng.usize(..FAMILIES.len())];
    let team = TEAMS[rng.usize(..TEAMS.len())];
    let env = pick(&mut rng, &ENVS);
    let region = pick(&mut rng, &REGIONS);
    let mut tags = vec![env.to_owned(), region.to_owned(), format!("team-{team}")];
    if rng.u32(0..10) == 0 {
        tags.push("beta".into());
    }
    let mut description = format!(
        "{display} for the {team} team in {region}: {}.",
        PURPOSES[rng.usize(..PURPOSES.len())]
    );
    if i % 100 == 37 {
        description.push_str(&format!(" Part of the {COMMON_WORD} rollout."));
    }
    if i % 10_000 == 4_242 {
        description.push_str(&format!(" Pinned by the {RARE_WORD} audit."));
    }
    let status = pick(
        &mut rng,
        &[
            (Status::Active, 60),
            (Status::Pending, 15),
            (Status::Error, 10),
            (Status::Deprecated, 10),
            (Status::Disabled, 5),
        ],
    );
    ModelFields {
        provider: Some(provider.to_owned()),
        description: Some(description),
        tags,
        api_base: (provider == "azure")
            .then(|| format!("https://{team}-{region}.openai.azure.com/")),
        api_version: (provider == "azure").then(|| "2024-02-15-preview".to_owned()),
        mode: Some(mode),
        rpm: Some(i64::from(rng.u32(1..100)) * 60),
        tpm: Some(i64::from(rng.u32(1..100)) * 10_000),
        timeout: Some(30.0),
        status,
        status_message: (status == Status::Error).then(|| "the provider rejected the key".into()),
        ..ModelFields::new(&format!("{display} {team} {env} {i}"), model)
    }
}

/// The environment of model `i` (its first tag, and the word of its name before its number).
pub fn env_of(i: u64) -> String {
    fields(i).tags.swap_remove(0)
}

/// Writes models `from..to` of the main project, and the matching share of the other
/// tenants' models (a tenth as many, spread evenly), reporting progress on stderr.
pub async fn seed(store: &dyn Store, keyring: &Keyring, from: u64, to: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let main = scope(MAIN_ORG, MAIN_PROJECT);
    let audit = AuditEntry {
        action: AuditAction::Create,
        principal: "service:bench-seed".into(),
        on_behalf_of: None,
        request_id: None,
        changes: serde_json::json!({"seeded": true}),
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut i = from;
    while i < to {
        let end = (i + BATCH as u64).min(to);
        batch.clear();
        for j in i..end {
            batch.push(new_model(keyring, &main, j, &uri(j))?);
        }
        store
            .insert_models(&main, &batch, &audit)
            .await
            .with_context(|| format!("seeding models {i}..{end}"))?;
        i = end;
        if i % 50_000 < BATCH as u64 {
            eprintln!(
                "seeded {i} of {to} in the main project ({:.0} models/s)",
                (i - from) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    // The other tenants: models from/10 .. to/10, round-robin.
    let (lo, hi) = (from / 10, to / 10);
    for (k, (org, project)) in OTHERS.iter().enumerate() {
        let s = scope(org, project);
        batch.clear();
        for j in (lo..hi).filter(|j| j % OTHERS.len() as u64 == k as u64) {
            batch.push(new_model(keyring, &s, j, &format!("o-{j:07}"))?);
            if batch.len() == BATCH {
                store.insert_models(&s, &batch, &audit).await?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            store.insert_models(&s, &batch, &audit).await?;
        }
    }
    eprintln!(
        "seeded {} models in {:.1} s",
        (to - from) + (hi - lo),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The projects of the `/v1/models` scenarios, in the main organization: (project, models).
/// They are seeded only when those scenarios run, so other runs do not wait for them.
pub const V1_PROJECTS: [(&str, u64); 2] = [("v1k", 1_000), ("v10k", 10_000)];

/// Writes models `0..n` (`v-0000000`, …, the same fields as the main project's first `n`)
/// into `org`/`project`.
pub async fn seed_project(
    store: &dyn Store,
    keyring: &Keyring,
    org: &str,
    project: &str,
    n: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let s = scope(org, project);
    let audit = AuditEntry {
        action: AuditAction::Create,
        principal: "service:bench-seed".into(),
        on_behalf_of: None,
        request_id: None,
        changes: serde_json::json!({"seeded": true}),
    };
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        batch.push(new_model(keyring, &s, i, &format!("v-{i:07}"))?);
        if batch.len() == BATCH || i + 1 == n {
            store
                .insert_models(&s, &batch, &audit)
                .await
                .with_context(|| format!("seeding {org}/{project}"))?;
            batch.clear();
        }
    }
    eprintln!(
        "seeded {n} models in {org}/{project} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn new_model(
    keyring: &Keyring,
    scope: &TenantScope,
    i: u64,
    uri: &str,
) -> anyhow::Result<NewModel> {
    let id = uuid::Uuid::now_v7();
    let mut creds = serde_json::Map::new();
    creds.insert("api_key".into(), format!("sk-bench-{i:012}").into());
    let credentials = Credentials::from_map(creds).map_err(anyhow::Error::msg)?;
    // One second apart, model 0 the oldest (about 230 days ago), the same whichever batch
    // writes a model, so sorts by time see real spread.
    let age = 20_000_000u64.saturating_sub(i);
    let now = Timestamp::from_offset_date_time(
        time::OffsetDateTime::now_utc() - time::Duration::seconds(age as i64),
    );
    let (fields, catalog) = catalogued(i);
    Ok(NewModel {
        id,
        resource_uri: ResourceUri::parse(uri).map_err(anyhow::Error::msg)?,
        generated: false,
        fields,
        catalog,
        credentials: keyring.seal(
            Binding {
                scope,
                record_id: id,
            },
            &credentials,
        ),
        actor: "service:bench-seed".into(),
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_words_hit_their_fractions() {
        let n = 100_000u64;
        let has = |w: &str| {
            (0..n)
                .filter(|i| fields(*i).description.unwrap().contains(w))
                .count()
        };
        assert_eq!(has(COMMON_WORD), 1_000);
        assert_eq!(has(RARE_WORD), 10);
        let both = (0..n)
            .filter(|i| {
                let t = fields(*i).tags;
                t.contains(&"prod".to_owned()) && t.contains(&"eu".to_owned())
            })
            .count();
        assert!((15_000..25_000).contains(&both), "{both}");
        assert_eq!(fields(7), fields(7), "deterministic");
    }
}
