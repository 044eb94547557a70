//! Prices, token limits, capabilities, `base_model` and the deprecation date through
//! `modelreg export --format litellm` and `modelreg import`, against a real server on SQLite
//! and PostgreSQL: an export imported into another project has the same values, each the
//! catalog's or the model's own (an override) as it was; a second import changes nothing; an
//! edited file gives a value back to the catalog or makes it an override; bad values fail their
//! entry only.

mod common;

use common::*;
use modelreg_store::testing::PgSchema;
use serde_json::{Value, json};

/// The catalogued fields as the API names them, and `base_model`.
const FIELDS: [&str; 9] = [
    "base_model",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_cost_per_token",
    "cache_write_cost_per_token",
    "max_input_tokens",
    "max_output_tokens",
    "capabilities",
    "deprecation_date",
];

struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    token: String,
}

impl Setup {
    async fn start(envs: &[(&str, &str)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("data"), envs).await;
        let token = server.token.clone().expect("a fresh store mints a token");
        Setup { dir, server, token }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        project: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        install_tls_provider();
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.server.base))
            .bearer_auth(&self.token)
            .header("x-project-id", project);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, project: &str, body: Value) {
        let (status, reply) = self
            .send(reqwest::Method::POST, "/assets/models", project, Some(body))
            .await;
        assert_eq!(status, 201, "{reply}");
    }

    async fn get(&self, project: &str, uri: &str) -> Value {
        let (status, model) = self
            .send(
                reqwest::Method::GET,
                &format!("/assets/models/{uri}"),
                project,
                None,
            )
            .await;
        assert_eq!(status, 200, "{project}/{uri}: {model}");
        model
    }

    /// The catalog entry a model with this model string takes its values from.
    async fn catalog(&self, litellm_model: &str, base_model: Option<&str>) -> Value {
        let mut path = format!("/assets/catalog?litellm_model={litellm_model}");
        if let Some(b) = base_model {
            path.push_str(&format!("&base_model={b}"));
        }
        let (status, page) = self.send(reqwest::Method::GET, &path, "demo", None).await;
        assert_eq!(status, 200, "{page}");
        page["data"][0].clone()
    }

    async fn run(&self, args: &[&str], project: &str) -> Run {
        let profile = self.dir.path().join("none.toml");
        let env = [
            ("MODELREG_SERVER", self.server.base.as_str()),
            ("MODELREG_TOKEN", self.token.as_str()),
            ("MODELREG_PROJECT", project),
            ("MODELREG_PROFILE_FILE", profile.to_str().unwrap()),
        ];
        cli(args, &env, None).await
    }

    /// `modelreg export --format litellm` of `project` into `name`, and its path.
    async fn export(&self, project: &str, name: &str) -> String {
        let path = self.path(name);
        self.run(&["export", "--format", "litellm", "-o", &path], project)
            .await
            .ok();
        path
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

fn read_yaml(path: &str) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_yaml(path: &str, config: &Value) {
    std::fs::write(path, serde_norway::to_string(config).unwrap()).unwrap();
}

/// The counts line of an import.
fn summary(run: &Run) -> &str {
    run.stdout.lines().last().unwrap_or_default()
}

/// The `model_info` of the entry whose id is `uri`.
fn info_of<'a>(config: &'a mut Value, uri: &str) -> &'a mut serde_json::Map<String, Value> {
    config["model_list"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["model_info"]["id"] == uri)
        .and_then(|e| e["model_info"].as_object_mut())
        .unwrap_or_else(|| panic!("{uri} in the export"))
}

/// What a model holds of the catalog: each field's value, and the catalog link.
fn catalogued(model: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for f in FIELDS {
        out.insert(f.into(), model[f].clone());
    }
    out.insert("catalog".into(), model["catalog"].clone());
    Value::Object(out)
}

/// Each model of `demo` below, by resource uri.
const URIS: [&str; 4] = ["mini", "priced", "azure-eu", "local"];

async fn round_trip(envs: &[(&str, &str)]) {
    let s = Setup::start(envs).await;
    // Every value the catalog's.
    s.create(
        "demo",
        json!({
            "resource_uri": "mini", "name": "mini", "litellm_model": "openai/gpt-4o-mini",
            "credentials": {"api_key": "os.environ/OPENAI_API_KEY"}
        }),
    )
    .await;
    // Overrides: a price, a limit, and a cache price the catalog does not have.
    s.create("demo", json!({
        "resource_uri": "priced", "name": "gpt-4o", "litellm_model": "openai/gpt-4o",
        "input_cost_per_token": 3e-6, "max_output_tokens": 4096, "cache_write_cost_per_token": 1e-6,
        "credentials": {"api_key": "os.environ/OPENAI_API_KEY"}
    }))
    .await;
    // Azure: a deployment named by its owner, priced by its base model; its own capabilities
    // and retirement day.
    s.create(
        "demo",
        json!({
            "resource_uri": "azure-eu", "name": "gpt-4o", "litellm_model": "azure/gpt-4o-eu",
            "base_model": "gpt-4o", "api_base": "https://example-eu.openai.azure.com/",
            "api_version": "2024-06-01", "capabilities": ["function_calling", "vision"],
            "deprecation_date": "2026-12-31",
            "credentials": {"api_key": "os.environ/AZURE_API_KEY"}
        }),
    )
    .await;
    // No catalog entry: every value the model's own.
    s.create(
        "demo",
        json!({
            "resource_uri": "local", "name": "local", "litellm_model": "ollama/modelreg-test-local",
            "input_cost_per_token": 0, "output_cost_per_token": 0, "max_input_tokens": 32768,
            "capabilities": ["function_calling"], "credentials": {"keyless": true}
        }),
    )
    .await;
    let priced = s.get("demo", "priced").await;
    assert_eq!(priced["catalog"]["key"], "gpt-4o");
    assert_eq!(
        priced["catalog"]["fields"]["input_cost_per_token"],
        "override"
    );
    assert_eq!(
        priced["catalog"]["fields"]["output_cost_per_token"],
        "catalog"
    );
    assert_eq!(s.get("demo", "local").await["catalog"]["key"], Value::Null);

    // The export: LiteLLM's own keys in model_info.
    let path = s.export("demo", "config.yaml").await;
    let text = std::fs::read_to_string(&path).unwrap();
    let mut config = read_yaml(&path);
    let gpt_4o = s.catalog("openai/gpt-4o", None).await;
    {
        let info = info_of(&mut config, "priced");
        assert_eq!(info["input_cost_per_token"], json!(3e-6));
        assert_eq!(
            info["output_cost_per_token"],
            gpt_4o["output_cost_per_token"]
        );
        assert_eq!(
            info["cache_read_input_token_cost"],
            gpt_4o["cache_read_cost_per_token"]
        );
        assert_eq!(info["cache_creation_input_token_cost"], json!(1e-6));
        assert_eq!(info["max_output_tokens"], 4096);
        assert_eq!(info["supports_vision"], true);
        assert!(
            !info.values().any(|v| v == false),
            "the catalog's capabilities: only true flags"
        );
    }
    {
        let info = info_of(&mut config, "azure-eu");
        assert_eq!(info["base_model"], "gpt-4o");
        assert_eq!(info["deprecation_date"], "2026-12-31");
        // The model's own capabilities: every flag stated, so that LiteLLM's cost map does
        // not add one back.
        assert_eq!(info["supports_vision"], true);
        assert_eq!(info["supports_function_calling"], true);
        assert_eq!(info["supports_tool_choice"], false);
        assert_eq!(
            info.keys().filter(|k| k.starts_with("supports_")).count(),
            15
        );
    }
    for ours in [
        "cache_read_cost_per_token",
        "cache_write_cost_per_token",
        "capabilities",
    ] {
        assert!(
            !text.contains(ours),
            "{ours} is not LiteLLM's name:\n{text}"
        );
    }

    // Into another project: the same values, each the catalog's or the model's own as it was.
    let copied = s.run(&["import", &path], "copy").await;
    copied.ok();
    assert_eq!(
        summary(&copied),
        "created 4, updated 0, unchanged 0, failed 0"
    );
    assert!(!copied.stderr.contains("kept out"), "{}", copied.stderr);
    for uri in URIS {
        assert_eq!(
            catalogued(&s.get("copy", uri).await),
            catalogued(&s.get("demo", uri).await),
            "{uri}"
        );
    }
    // A second import changes nothing, in either project.
    for project in ["copy", "demo"] {
        let again = s.run(&["import", &path], project).await;
        again.ok();
        assert_eq!(
            again.stdout, "created 0, updated 0, unchanged 4, failed 0\n",
            "{project}"
        );
    }
    let copy_path = s.export("copy", "copy.yaml").await;
    assert_eq!(read_yaml(&copy_path)["model_list"], config["model_list"]);

    // An edited file: a value left out is the catalog's again, a changed one the model's own,
    // capabilities without flags the catalog's.
    let gpt_4o_mini = s.catalog("openai/gpt-4o-mini", None).await;
    info_of(&mut config, "priced").remove("input_cost_per_token");
    info_of(&mut config, "mini").insert("output_cost_per_token".into(), json!(9e-7));
    info_of(&mut config, "azure-eu").retain(|k, _| !k.starts_with("supports_"));
    let edited = s.path("edited.yaml");
    write_yaml(&edited, &config);
    let dry = s.run(&["import", "--dry-run", &edited], "copy").await;
    dry.ok();
    for line in [
        "~ priced\n    input_cost_per_token: 3e-6 → 2.5e-6 (the catalog's)\n",
        "~ mini\n    output_cost_per_token: 6e-7 → 9e-7\n",
        "~ azure-eu\n    capabilities: [\"vision\",\"function_calling\"] → [\"vision\",\"function_calling\",\"parallel_function_calling\",\"tool_choice\",\"response_schema\",\"prompt_caching\"] (the catalog's)\n",
        "would be created 0, would be updated 3, unchanged 1, failed 0",
    ] {
        assert!(dry.stdout.contains(line), "{line} in\n{}", dry.stdout);
    }
    assert_eq!(
        s.get("copy", "priced").await["input_cost_per_token"],
        3e-6,
        "a dry run writes nothing"
    );
    let applied = s.run(&["import", &edited], "copy").await;
    applied.ok();
    assert_eq!(
        summary(&applied),
        "created 0, updated 3, unchanged 1, failed 0"
    );
    let priced = s.get("copy", "priced").await;
    assert_eq!(
        priced["input_cost_per_token"],
        gpt_4o["input_cost_per_token"]
    );
    assert_eq!(
        priced["catalog"]["fields"]["input_cost_per_token"],
        "catalog"
    );
    assert_eq!(
        priced["catalog"]["fields"]["max_output_tokens"], "override",
        "untouched"
    );
    let mini = s.get("copy", "mini").await;
    assert_eq!(mini["output_cost_per_token"], 9e-7);
    assert_eq!(
        mini["catalog"]["fields"]["output_cost_per_token"],
        "override"
    );
    assert_eq!(
        mini["input_cost_per_token"],
        gpt_4o_mini["input_cost_per_token"]
    );
    let azure = s.get("copy", "azure-eu").await;
    let azure_gpt_4o = s.catalog("azure/gpt-4o-eu", Some("gpt-4o")).await;
    assert_eq!(azure_gpt_4o["key"], "azure/gpt-4o");
    assert_eq!(azure["capabilities"], azure_gpt_4o["capabilities"]);
    assert_eq!(azure["catalog"]["fields"]["capabilities"], "catalog");
    assert_eq!(azure["catalog"]["fields"]["deprecation_date"], "override");
    let again = s.run(&["import", &edited], "copy").await;
    assert_eq!(
        again.ok().stdout,
        "created 0, updated 0, unchanged 4, failed 0\n"
    );

    third_party_config(&s).await;
    bad_values_fail_their_entry(&s).await;
}

/// A config written for LiteLLM by hand: custom pricing in `litellm_params` (where LiteLLM's
/// documentation puts it), quoted numbers, a capability switched off.
async fn third_party_config(s: &Setup) {
    let file = s.path("hand.yaml");
    std::fs::write(
        &file,
        "model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      input_cost_per_token: 0.000005
      output_cost_per_token: \"0.00001\"
    model_info:
      id: hand
      max_input_tokens: 128000
      supports_vision: false
      supports_native_streaming: true
",
    )
    .unwrap();
    let run = s.run(&["import", &file], "hand").await;
    run.ok();
    assert!(
        run.stderr
            .contains("hand: kept out (no such model field): model_info.supports_native_streaming"),
        "{}",
        run.stderr
    );
    let hand = s.get("hand", "hand").await;
    let fields = &hand["catalog"]["fields"];
    assert_eq!(hand["input_cost_per_token"], 5e-6);
    assert_eq!(fields["input_cost_per_token"], "override");
    assert_eq!(
        fields["output_cost_per_token"], "catalog",
        "the catalog's price, quoted"
    );
    assert_eq!(fields["max_input_tokens"], "catalog");
    assert_eq!(fields["capabilities"], "override");
    let caps = hand["capabilities"].as_array().unwrap();
    assert!(
        !caps.contains(&json!("vision")) && caps.contains(&json!("function_calling")),
        "{caps:?}"
    );
    let again = s.run(&["import", &file], "hand").await;
    assert_eq!(
        summary(again.ok()),
        "created 0, updated 0, unchanged 1, failed 0"
    );
    // Exported, the price is in model_info, where LiteLLM's Router reads it too.
    let export = read_yaml(&s.export("hand", "hand-export.yaml").await);
    let entry = &export["model_list"][0];
    assert_eq!(entry["model_info"]["input_cost_per_token"], 5e-6);
    assert!(
        entry["litellm_params"]
            .get("input_cost_per_token")
            .is_none()
    );
}

/// Values of the wrong type or range fail their entry, with the reason, and the others go on.
async fn bad_values_fail_their_entry(s: &Setup) {
    let file = s.path("bad.yaml");
    std::fs::write(
        &file,
        "model_list:
  - model_name: fine
    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/OPENAI_API_KEY}
    model_info: {input_cost_per_token: 1.0e-7}
  - model_name: negative-price
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
    model_info: {input_cost_per_token: -0.5}
  - model_name: wordy-limit
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
    model_info: {max_input_tokens: lots}
  - model_name: yes-flag
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
    model_info: {supports_vision: \"yes\"}
  - model_name: no-such-day
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
    model_info: {deprecation_date: 2025-02-30}
  - model_name: string-price
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, output_cost_per_token: free}
",
    )
    .unwrap();
    for (args, counts) in [
        (
            vec!["import", "--dry-run", &file],
            "would be created 1, would be updated 0, unchanged 0, failed 5",
        ),
        (
            vec!["import", &file],
            "created 1, updated 0, unchanged 0, failed 5",
        ),
    ] {
        let run = s.run(&args, "bad").await;
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        // The dry run's reasons are the server's own rules, run by the client; the real run's
        // are the server's answers (or, for a flag, the client's reading of the file).
        for (uri, reason) in [
            (
                "negative-price",
                "alidation failed: input_cost_per_token: must be a price in USD per token, from 0 to 1",
            ),
            (
                "wordy-limit",
                "alidation failed: max_input_tokens: invalid type: string",
            ),
            (
                "yes-flag",
                "validation failed: model_info.supports_vision: must be true or false (got \"yes\")",
            ),
            (
                "no-such-day",
                "alidation failed: deprecation_date: must be a calendar day",
            ),
            (
                "string-price",
                "alidation failed: output_cost_per_token: invalid type: string",
            ),
        ] {
            let line = run
                .stderr
                .lines()
                .find(|l| l.starts_with(&format!("! {uri}: ")))
                .unwrap_or_else(|| panic!("{args:?}: {uri} in\n{}", run.stderr));
            assert!(line.contains(reason), "{args:?}: {reason} in {line}");
        }
        assert_eq!(summary(&run), counts, "{}", run.stdout);
    }
    let fine = s.get("bad", "fine").await;
    assert_eq!(fine["input_cost_per_token"], 1e-7);
    assert_eq!(
        fine["catalog"]["fields"]["input_cost_per_token"],
        "override"
    );
}

#[tokio::test]
async fn catalog_values_and_provenance_survive_a_round_trip_on_sqlite() {
    round_trip(&[]).await;
}

#[tokio::test]
async fn catalog_values_and_provenance_survive_a_round_trip_on_postgres() {
    let schema = PgSchema::create().await;
    round_trip(&[
        ("MODELREG_DATABASE_URL", &schema.url),
        ("MODELREG_MASTER_KEY", MASTER_KEY),
    ])
    .await;
}
