//! `modelreg catalog refresh FILE` and `modelreg catalog diff` against a real server process:
//! an operator loads a newer cost map offline, every model keeps its values (an override
//! above all), and the upstream changes are listed, taken and kept from the command line.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The bundled catalog's gpt-4o with a new input price and context window.
fn newer_cost_map() -> Value {
    let catalog = modelreg_core::catalog::Catalog::bundled();
    let e = catalog.get("gpt-4o").expect("gpt-4o is bundled");
    json!({
        "sample_spec": {"max_tokens": "documentation"},
        "gpt-4o": {
            "litellm_provider": "openai",
            "mode": "chat",
            "input_cost_per_token": 0.00002,
            "output_cost_per_token": e.output_cost_per_token,
            "cache_read_input_token_cost": e.cache_read_cost_per_token,
            "max_input_tokens": 500000,
            "max_output_tokens": e.max_output_tokens,
            "supports_function_calling": true,
            "supports_vision": true,
        },
        "brand-new-model": {"litellm_provider": "openai", "mode": "chat",
                             "input_cost_per_token": 0.000001}
    })
}

#[tokio::test]
async fn a_refresh_is_offline_keeps_overrides_and_diff_takes_or_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]).await;
    let token = server.token.clone().unwrap();
    let client = Client::new(&server.base, &token);
    for (name, body) in [
        ("plain", json!({})),
        ("pinned", json!({"input_cost_per_token": 0.000004})),
        ("kept", json!({})),
    ] {
        let mut b = json!({"name": name, "litellm_model": "openai/gpt-4o",
                           "credentials": {"api_key": "sk-x"}});
        b.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let (status, _) = client.send(Method::POST, "/assets/models", Some(b)).await;
        assert_eq!(status, 201);
    }

    // A file that is not a cost map is refused, and nothing is loaded.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1, 2, 3]").unwrap();
    let data_dir = data.to_str().unwrap();
    let (ok, _, err) = output(
        &[
            "catalog",
            "refresh",
            bad.to_str().unwrap(),
            "--data-dir",
            data_dir,
        ],
        &[],
    )
    .await;
    assert!(!ok, "a JSON array is not a cost map");
    assert!(err.contains("not a usable cost map"), "{err}");
    let (_, none) = client
        .send(Method::GET, "/assets/catalog/changes", None)
        .await;
    assert_eq!(none["data"], json!([]));

    let file = dir.path().join("model_prices.json");
    std::fs::write(&file, newer_cost_map().to_string()).unwrap();
    let (ok, out, err) = output(
        &[
            "catalog",
            "refresh",
            file.to_str().unwrap(),
            "--version",
            "1.999.0",
            "--date",
            "2026-12-01",
            "--data-dir",
            data_dir,
        ],
        &[],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("litellm 1.999.0 (2026-12-01), 2 entries"),
        "{out}"
    );
    assert!(out.contains("1 entries added"), "{out}");
    assert!(out.contains("1 changed"), "{out}");

    // The running server uses the new catalog at once; no model changed.
    let (_, cat) = client
        .send(Method::GET, "/assets/catalog/brand-new-model", None)
        .await;
    assert_eq!(cat["source"]["version"], "1.999.0");
    let (_, pinned) = client
        .send(Method::GET, "/assets/models/pinned", None)
        .await;
    assert_eq!(pinned["input_cost_per_token"], 0.000004);

    let profiles = dir.path().join("profiles.toml");
    let env: &[(&str, &str)] = &[
        ("MODELREG_PROFILE_FILE", profiles.to_str().unwrap()),
        ("COLUMNS", "200"),
    ];
    cli(
        &["login", "--server", &server.base, "--project", "demo"],
        env,
        Some(&format!("{token}\n")),
    )
    .await
    .ok();
    let diff = cli(&["catalog", "diff"], env, None).await;
    diff.ok();
    let rows: Vec<Vec<&str>> = diff
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let has = |uri: &str, field: &str| rows.iter().any(|r| r.contains(&uri) && r.contains(&field));
    assert!(has("plain", "input_cost_per_token"), "{}", diff.stdout);
    assert!(has("plain", "max_input_tokens"), "{}", diff.stdout);
    assert!(
        !has("pinned", "input_cost_per_token"),
        "an override is no upstream change:\n{}",
        diff.stdout
    );

    cli(&["catalog", "diff", "--keep", "--model", "kept"], env, None)
        .await
        .ok();
    let took = cli(&["catalog", "diff", "--take"], env, None).await;
    took.ok();
    assert!(
        took.stderr.contains("took the upstream changes of"),
        "{}",
        took.stderr
    );
    let (_, plain) = client.send(Method::GET, "/assets/models/plain", None).await;
    assert_eq!(plain["input_cost_per_token"], 0.00002);
    assert_eq!(plain["max_input_tokens"], 500000);
    assert_eq!(
        plain["catalog"]["fields"]["input_cost_per_token"],
        "catalog"
    );
    let (_, kept) = client.send(Method::GET, "/assets/models/kept", None).await;
    assert_ne!(kept["input_cost_per_token"], 0.00002, "kept its value");
    assert_eq!(
        kept["catalog"]["fields"]["input_cost_per_token"],
        "override"
    );
    let after = cli(&["catalog", "diff", "-o", "json"], env, None).await;
    after.ok();
    assert_eq!(after.json(), json!([]), "nothing left to settle");
}
