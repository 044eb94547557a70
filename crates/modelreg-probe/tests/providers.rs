//! Every probe against a real HTTP server on 127.0.0.1 that emulates the provider, and every
//! way a probe fails.

use std::time::Duration;

use modelreg_core::verify::{DEFAULT_PROBE_TIMEOUT, ProbeOutcome, ProbeTarget, Prober};
use modelreg_probe::{DenyList, HttpProber, ProbeConfig, testing};

fn target(provider: &str, model: &str, base: Option<String>, key: &str) -> ProbeTarget {
    ProbeTarget {
        provider: Some(provider.into()),
        litellm_model: model.into(),
        api_base: base,
        api_version: None,
        timeout: DEFAULT_PROBE_TIMEOUT,
        credentials: serde_json::from_value(serde_json::json!({ "api_key": key })).unwrap(),
    }
}

async fn probe(t: &ProbeTarget) -> ProbeOutcome {
    HttpProber::new(ProbeConfig::default())
        .unwrap()
        .probe(t)
        .await
}

#[tokio::test]
async fn each_provider_accepts_a_good_key_and_rejects_a_bad_one() {
    let addr = testing::start().await;
    let base = |p: &str| Some(format!("http://{addr}/{p}"));
    let cases = [
        ("openai", "openai/gpt-4o", base("openai/v1")),
        ("groq", "groq/llama3-70b", base("openai/v1")),
        ("hosted_vllm", "hosted_vllm/gpt-4o-mini", base("openai/v1")),
        ("my-gateway", "my-gateway/gpt-4o", base("openai/v1")),
        ("azure", "azure/my-deployment", base("azure")),
        (
            "anthropic",
            "anthropic/claude-3-5-sonnet",
            base("anthropic"),
        ),
        ("gemini", "gemini/gemini-1.5-pro", base("gemini")),
        ("ollama", "ollama/llama3", base("ollama")),
    ];
    for (provider, model, api_base) in cases {
        let good = probe(&target(
            provider,
            model,
            api_base.clone(),
            testing::GOOD_KEY,
        ))
        .await;
        assert!(good.verified, "{provider}: {}", good.message);
        assert!(!good.message.contains(testing::GOOD_KEY));
        if provider != "ollama" {
            let bad = probe(&target(provider, model, api_base, "wrong-key")).await;
            assert!(!bad.verified, "{provider}");
            assert!(
                bad.message.contains("rejected the credentials"),
                "{provider}: {}",
                bad.message
            );
            assert!(!bad.message.contains("wrong-key"));
        }
    }
}

#[tokio::test]
async fn a_model_the_provider_does_not_list_is_reported() {
    let addr = testing::start().await;
    let o = probe(&target(
        "openai",
        "openai/gpt-9",
        Some(format!("http://{addr}/openai/v1")),
        testing::GOOD_KEY,
    ))
    .await;
    assert!(!o.verified);
    assert!(
        o.message.contains("gpt-9 is not among the 3 models"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn every_failure_says_what_it_is() {
    let addr = testing::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cases = [
        (format!("http://{addr}/fail"), "failed with HTTP 500"),
        (format!("http://{addr}/garbage"), "not JSON"),
        (format!("http://{addr}/huge"), "larger than"),
        (format!("http://{addr}/to-metadata"), "denied"),
        (format!("http://{addr}/nothing-here"), "HTTP 404"),
        (format!("http://{closed}"), "connection refused"),
        (
            "http://nonexistent-host.invalid".to_owned(),
            "DNS lookup of nonexistent-host.invalid failed",
        ),
        (format!("https://{addr}/openai/v1"), "TLS handshake"),
        ("http://169.254.169.254/latest".to_owned(), "denied"),
        ("http://[fd00:ec2::254]/v1".to_owned(), "denied"),
    ];
    for (base, want) in cases {
        let o = probe(&target(
            "openai",
            "openai/gpt-4o",
            Some(base.clone()),
            testing::GOOD_KEY,
        ))
        .await;
        assert!(!o.verified, "{base}");
        assert!(
            o.message.contains(want),
            "{base}: {:?} lacks {want:?}",
            o.message
        );
    }
    // A redirect within the allowed set is followed.
    let o = probe(&target(
        "openai",
        "openai/gpt-4o",
        Some(format!("http://{addr}/hop")),
        testing::GOOD_KEY,
    ))
    .await;
    assert!(o.verified, "{}", o.message);
}

/// Every provider's probe meets every misbehaviour, and says which.
#[tokio::test]
async fn every_provider_reports_every_failure() {
    let addr = testing::start().await;
    let providers = [
        ("openai", "openai/gpt-4o"),
        ("azure", "azure/deploy"),
        ("anthropic", "anthropic/claude-3-5-sonnet"),
        ("gemini", "gemini/gemini-1.5-pro"),
        ("ollama", "ollama/llama3"),
        ("bedrock", "bedrock/anthropic.claude-3-sonnet-20240229-v1:0"),
    ];
    let failures = [
        ("slow", "timeout"),
        ("fail", "failed with HTTP 500"),
        ("garbage", "not JSON"),
        ("huge", "larger than"),
        ("to-metadata", "denied"),
    ];
    for (provider, model) in providers {
        for (path, want) in failures {
            let mut t = target(
                provider,
                model,
                Some(format!("http://{addr}/{path}")),
                testing::GOOD_KEY,
            );
            t.credentials = serde_json::from_value(serde_json::json!({
                "api_key": testing::GOOD_KEY,
                "aws_access_key_id": testing::BEDROCK_ACCESS_KEY,
                "aws_secret_access_key": testing::BEDROCK_SECRET,
            }))
            .unwrap();
            t.timeout = Duration::from_millis(300);
            let o = probe(&t).await;
            assert!(!o.verified, "{provider} {path}");
            assert!(
                o.message.contains(want),
                "{provider} {path}: {:?} lacks {want:?}",
                o.message
            );
            assert!(
                !o.message.contains(testing::GOOD_KEY)
                    && !o.message.contains(testing::BEDROCK_SECRET)
            );
        }
    }
}

#[tokio::test]
async fn a_slow_provider_times_out_at_the_models_timeout() {
    let addr = testing::start().await;
    let mut t = target(
        "openai",
        "openai/gpt-4o",
        Some(format!("http://{addr}/slow")),
        testing::GOOD_KEY,
    );
    t.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let o = probe(&t).await;
    assert!(!o.verified);
    assert!(
        o.message.contains("timeout") && o.message.contains("0.3 s"),
        "{}",
        o.message
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn the_deny_list_is_configurable() {
    let addr = testing::start().await;
    let prober = HttpProber::new(ProbeConfig {
        deny: DenyList::parse(&["127.0.0.0/8"]).unwrap(),
        ..ProbeConfig::default()
    })
    .unwrap();
    let t = target(
        "openai",
        "openai/gpt-4o",
        Some(format!("http://localhost:{}/openai/v1", addr.port())),
        testing::GOOD_KEY,
    );
    let o = prober.probe(&t).await;
    assert!(!o.verified && o.message.contains("denied"), "{}", o.message);
}

#[tokio::test]
async fn bedrock_requests_are_signed_with_sigv4() {
    let addr = testing::start().await;
    let bedrock = |secret: &str, region: Option<&str>| {
        let mut creds = serde_json::json!({
            "aws_access_key_id": testing::BEDROCK_ACCESS_KEY,
            "aws_secret_access_key": secret,
        });
        if let Some(r) = region {
            creds["aws_region_name"] = serde_json::json!(r);
        }
        ProbeTarget {
            provider: Some("bedrock".into()),
            litellm_model: "bedrock/anthropic.claude-3-sonnet-20240229-v1:0".into(),
            api_base: Some(format!("http://{addr}/bedrock")),
            api_version: None,
            timeout: DEFAULT_PROBE_TIMEOUT,
            credentials: serde_json::from_value(creds).unwrap(),
        }
    };
    let good = probe(&bedrock(testing::BEDROCK_SECRET, Some("eu-west-1"))).await;
    assert!(good.verified, "{}", good.message);
    let bad = probe(&bedrock("wrong-secret", None)).await;
    assert!(
        !bad.verified && bad.message.contains("rejected the credentials"),
        "{}",
        bad.message
    );
    assert!(!bad.message.contains("wrong-secret"));
    let mut missing = bedrock(testing::BEDROCK_SECRET, None);
    missing.credentials = serde_json::from_str(r#"{"aws_access_key_id": "x"}"#).unwrap();
    let o = probe(&missing).await;
    assert!(
        !o.verified && o.message.contains("aws_secret_access_key"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn providers_without_a_probe_or_a_key_say_so() {
    let o = probe(&target("sagemaker", "sagemaker/endpoint", None, "k")).await;
    assert!(
        !o.verified && o.message.contains("no probe for provider \"sagemaker\""),
        "{}",
        o.message
    );
    let o = probe(&target("hosted_vllm", "hosted_vllm/x", None, "k")).await;
    assert!(
        !o.verified && o.message.contains("needs an api_base"),
        "{}",
        o.message
    );
    let mut t = target("openai", "openai/gpt-4o", None, "k");
    t.credentials = serde_json::from_str(r#"{"organization": "o"}"#).unwrap();
    let o = probe(&t).await;
    assert!(
        !o.verified && o.message.contains("no api_key"),
        "{}",
        o.message
    );
}

/// The session token of the Bedrock credentials below: a secret like the others.
const SESSION_TOKEN: &str = "session-token-for-tests";

/// Headers that carry a credential in some provider's probe.
const CREDENTIAL_HEADERS: [&str; 7] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
];

/// The providers whose probe sends a credential, each with its model and the fake provider's
/// path for it. Every one gets every credential field, so Bedrock signs with a session token.
fn credentialed_probes(api_base: impl Fn(&str) -> String) -> Vec<(&'static str, ProbeTarget)> {
    [
        ("openai", "openai/gpt-4o", "openai/v1"),
        ("azure", "azure/deploy", "azure"),
        ("anthropic", "anthropic/claude-3-5-sonnet", "anthropic"),
        ("gemini", "gemini/gemini-1.5-pro", "gemini"),
        (
            "bedrock",
            "bedrock/anthropic.claude-3-sonnet-20240229-v1:0",
            "bedrock",
        ),
    ]
    .into_iter()
    .map(|(provider, model, path)| {
        let mut t = target(provider, model, Some(api_base(path)), testing::GOOD_KEY);
        t.credentials = serde_json::from_value(serde_json::json!({
            "api_key": testing::GOOD_KEY,
            "aws_access_key_id": testing::BEDROCK_ACCESS_KEY,
            "aws_secret_access_key": testing::BEDROCK_SECRET,
            "aws_session_token": SESSION_TOKEN,
        }))
        .unwrap();
        (provider, t)
    })
    .collect()
}

/// A provider endpoint that redirects to another host must not get the tenant's credential
/// sent there: not the headers reqwest strips itself (`Authorization`), and not the custom ones
/// it does not (`x-api-key`, `api-key`, `x-goog-api-key`, `x-amz-security-token`).
#[tokio::test]
async fn a_redirect_to_another_host_gets_no_credentials() {
    let origin = testing::start().await;
    let secrets = [
        testing::GOOD_KEY,
        testing::BEDROCK_ACCESS_KEY,
        testing::BEDROCK_SECRET,
        SESSION_TOKEN,
    ];
    // Every provider and hop is tried before failing, so the failure lists every leak.
    let mut problems = Vec::new();
    for (provider, _) in credentialed_probes(|_| String::new()) {
        // The server redirected to records every request; it is the full fake provider, so
        // a credential that reached it would even be accepted, as an attacker's would be.
        let (other, log) = testing::start_recording().await;
        let hops = [
            // (status, where the model points, where it is sent, what differs)
            (
                307,
                origin.to_string(),
                format!("127.0.0.1:{}", other.port()),
                "port",
            ),
            (
                302,
                origin.to_string(),
                format!("localhost:{}", other.port()),
                "host and port",
            ),
            // The model names `localhost`; the redirect goes to the same server by its IP.
            (
                308,
                format!("localhost:{}", other.port()),
                format!("127.0.0.1:{}", other.port()),
                "host",
            ),
        ];
        for (status, from, to, differs) in hops {
            let (_, t) =
                credentialed_probes(|path| format!("http://{from}/redirect/{status}/{to}/{path}"))
                    .into_iter()
                    .find(|(p, _)| *p == provider)
                    .unwrap();
            let seen_before = log.requests().len();
            let o = probe(&t).await;
            let case = format!("{provider}, a {status} to another {differs}");
            for r in log
                .requests()
                .iter()
                .skip(seen_before)
                .filter(|r| r.host != from)
            {
                for (name, value) in &r.headers {
                    if CREDENTIAL_HEADERS.contains(&name.as_str())
                        || secrets.iter().any(|s| value.contains(s))
                    {
                        problems.push(format!(
                            "{case}: {} received header {name} on {}",
                            r.host, r.uri
                        ));
                    }
                }
            }
            if o.verified
                || !o.message.contains("redirect to another host refused")
                || !o.message.contains(&format!("http://{to}"))
                || !o.message.contains("credentials were not sent")
            {
                problems.push(format!(
                    "{case}: verified {}, message {:?}",
                    o.verified, o.message
                ));
            }
            if secrets.iter().any(|s| o.message.contains(s)) {
                problems.push(format!("{case}: the message shows a secret"));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// A redirect that stays on the model's own scheme, host and port is followed, credential and
/// all. Bedrock is left out: its SigV4 signature covers the path, which the redirect changes,
/// so no server could accept it after the hop.
#[tokio::test]
async fn a_redirect_on_the_same_host_and_port_is_followed() {
    let (addr, log) = testing::start_recording().await;
    let probes = credentialed_probes(|path| {
        format!(
            "http://{addr}/redirect/307/127.0.0.1:{}/{path}",
            addr.port()
        )
    });
    let probes: Vec<_> = probes.iter().filter(|(p, _)| *p != "bedrock").collect();
    for (provider, t) in &probes {
        let o = probe(t).await;
        assert!(o.verified, "{provider}: {}", o.message);
    }
    let requests = log.requests();
    assert_eq!(requests.len(), 2 * probes.len(), "{requests:?}");
    assert!(requests.iter().all(|r| r.host == addr.to_string()));
}
