//! The background health checker: the status transitions it makes, one check per model per
//! interval across replicas, and back-off for models that keep failing. Rounds run at a
//! simulated time, so nothing here waits for a clock.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use modelreg_core::{
    checker::{CheckerConfig, HealthChecker, Round},
    secrets::{Kek, Keyring},
    service::ModelService,
    timestamp::Timestamp,
};
use modelreg_probe::{HttpProber, ProbeConfig, testing};
use serde_json::json;

const INTERVAL: Duration = Duration::from_secs(60);

fn checker(app: &TestApp, keyring: Arc<Keyring>, owner: &str) -> HealthChecker {
    let models = ModelService::new(app.store.clone(), keyring)
        .with_prober(Arc::new(HttpProber::new(ProbeConfig::default()).unwrap()));
    HealthChecker::new(
        models,
        app.store.clone(),
        CheckerConfig {
            interval: INTERVAL,
            jitter: Duration::ZERO,
            ..CheckerConfig::default()
        },
        owner.into(),
    )
}

/// Creates models through a router sharing `keyring`, so the checker can open them.
async fn setup(app: &TestApp) -> (Tenant, Arc<Keyring>, TestApp) {
    let key = Kek::generate();
    let b64 = key.to_base64();
    let keyring = Arc::new(Keyring::new(vec![key]).unwrap());
    let writer = app.with_keyring(Keyring::new(vec![Kek::from_base64(&b64).unwrap()]).unwrap());
    let t = app.tenant().await;
    (t, keyring, writer)
}

async fn status(app: &TestApp, t: &Tenant, uri: &str) -> serde_json::Value {
    app.send(t.get(&format!("/assets/models/{uri}")))
        .await
        .expect(200)
        .json
}

async fn transitions_and_people_set_statuses(app: TestApp) {
    let addr = testing::start().await;
    let (t, keyring, writer) = setup(&app).await;
    let base = format!("http://{addr}/openai/v1");
    for (name, key) in [
        ("good", testing::GOOD_KEY),
        ("bad", "nope"),
        ("retired", testing::GOOD_KEY),
        ("off", testing::GOOD_KEY),
    ] {
        writer
            .send(t.post("/assets/models", json!({"name": name, "litellm_model": "openai/gpt-4o",
                                                   "api_base": base, "credentials": {"api_key": key}})))
            .await
            .expect(201);
    }
    writer
        .send(t.patch("/assets/models/retired", json!({"status": "DEPRECATED"})))
        .await
        .expect(200);
    writer
        .send(t.patch("/assets/models/off", json!({"status": "DISABLED"})))
        .await
        .expect(200);
    let c = checker(&app, keyring, "replica-a");
    let now = Timestamp::now();
    let round = c.run_once_at(now).await.unwrap();
    assert_eq!(
        round,
        Round {
            checked: 2,
            verified: 1,
            failed: 1
        }
    );
    assert_eq!(status(&writer, &t, "good").await["status"], "ACTIVE");
    let bad = status(&writer, &t, "bad").await;
    assert_eq!(bad["status"], "ERROR");
    assert!(bad["status_message"].as_str().unwrap().contains("rejected"));
    for untouched in ["retired", "off"] {
        let m = status(&writer, &t, untouched).await;
        assert!(m["last_verified_at"].is_null(), "{untouched} was checked");
    }
    // Nothing is due again before the interval.
    assert_eq!(
        c.run_once_at(now.plus(Duration::from_secs(30)))
            .await
            .unwrap()
            .checked,
        0
    );
    // The key is fixed: the next check after the back-off finds it healthy.
    writer
        .send(t.put(
            "/assets/models/bad",
            json!({"credentials": {"api_key": testing::GOOD_KEY}}),
        ))
        .await
        .expect(200);
    let round = c
        .run_once_at(now.plus(INTERVAL * 2 + Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(
        round,
        Round {
            checked: 2,
            verified: 2,
            failed: 0
        }
    );
    assert_eq!(status(&writer, &t, "bad").await["status"], "ACTIVE");
}

async fn failing_models_back_off(app: TestApp) {
    let addr = testing::start().await;
    let (t, keyring, writer) = setup(&app).await;
    let base = format!("http://{addr}/openai/v1");
    for (name, key) in [("good", testing::GOOD_KEY), ("bad", "nope")] {
        writer
            .send(t.post("/assets/models", json!({"name": name, "litellm_model": "openai/gpt-4o",
                                                   "api_base": base, "credentials": {"api_key": key}})))
            .await
            .expect(201);
    }
    let c = checker(&app, keyring, "replica-a");
    let t0 = Timestamp::now();
    let at = |secs: u64| t0.plus(Duration::from_secs(secs));
    assert_eq!(c.run_once_at(t0).await.unwrap().checked, 2);
    // After 1 failure the bad one waits 2 intervals; the good one waits 1.
    assert_eq!(
        c.run_once_at(at(61)).await.unwrap(),
        Round {
            checked: 1,
            verified: 1,
            failed: 0
        }
    );
    // At 121 s both are due: the bad one after its 2 intervals, the good one again after 1.
    assert_eq!(
        c.run_once_at(at(121)).await.unwrap(),
        Round {
            checked: 2,
            verified: 1,
            failed: 1
        }
    );
    // After 2 failures in a row it waits 4 intervals (from the round at 121 s).
    let r = c.run_once_at(at(121 + 180)).await.unwrap();
    assert_eq!(r.failed, 0, "the bad model came back too early: {r:?}");
    let r = c.run_once_at(at(121 + 241)).await.unwrap();
    assert_eq!(r.failed, 1, "{r:?}");
    assert_eq!(c.next_delay(0), INTERVAL);
    assert_eq!(c.next_delay(3), INTERVAL * 8);
    assert_eq!(c.next_delay(30), Duration::from_secs(6 * 3600), "capped");
}

async fn each_model_is_checked_by_one_replica(app: TestApp) {
    let addr = testing::start().await;
    let (t, keyring, writer) = setup(&app).await;
    let base = format!("http://{addr}/openai/v1");
    for i in 0..30 {
        writer
            .send(t.post("/assets/models", json!({"name": format!("m{i}"), "litellm_model": "openai/gpt-4o",
                                                   "api_base": base, "credentials": {"api_key": testing::GOOD_KEY}})))
            .await
            .expect(201);
    }
    let replicas: Vec<HealthChecker> = ["a", "b", "c"]
        .iter()
        .map(|o| checker(&app, keyring.clone(), o))
        .collect();
    let now = Timestamp::now();
    let rounds = futures::future::join_all(replicas.iter().map(|c| c.run_once_at(now))).await;
    let total: u64 = rounds.iter().map(|r| r.as_ref().unwrap().checked).sum();
    assert_eq!(total, 30, "each due model once across replicas: {rounds:?}");
    let again = futures::future::join_all(replicas.iter().map(|c| c.run_once_at(now))).await;
    assert!(again.iter().all(|r| r.as_ref().unwrap().checked == 0));
}

on_both_backends!(
    transitions_and_people_set_statuses,
    failing_models_back_off,
    each_model_is_checked_by_one_replica,
);
