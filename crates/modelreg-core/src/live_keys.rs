//! The master keys of a running server. A server learns keys added since it started without a
//! restart: it re-reads its key configuration on SIGHUP, every few seconds beside its
//! heartbeat, and at once (at most every `LEARN_GAP`) when it meets a record sealed under a key
//! it does not hold.
//!
//! It seals new credentials under the newest key that every live replica holds (as their
//! heartbeats report), not simply its own newest, so a replica that has not yet learned a new
//! key can still read everything the others write. `keys rotate` checks the same heartbeats
//! before it re-wraps anything (docs/secrets.md).

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use crate::{
    list::CursorKeys,
    secrets::{Binding, Credentials, Keyring, SealedCredentials},
};

/// The least time between two re-reads caused by records under unknown keys: a flood of such
/// records (say, a database restored from elsewhere) costs one re-read, not one per row.
const LEARN_GAP: Duration = Duration::from_secs(5);

/// What reads the key configuration again: the key file or the configuration file.
pub type Reload = Arc<dyn Fn() -> Result<Keyring, String> + Send + Sync>;

/// One consistent view of the keys: every key, the one new credentials are sealed under, and
/// the keys cursors are sealed with.
pub struct KeyState {
    ring: Arc<Keyring>,
    seal_id: String,
    cursors: CursorKeys,
}

impl KeyState {
    fn new(ring: Arc<Keyring>, seal_id: String) -> KeyState {
        // Cursors are sealed under the key derived from the sealing key, and opened by any.
        let mut derived = ring.derive("list-cursor");
        derived.sort_by_key(|(id, _)| *id != seal_id);
        let cursors = CursorKeys::new(derived.into_iter().map(|(_, k)| k).collect());
        KeyState {
            ring,
            seal_id,
            cursors,
        }
    }

    /// Every key this server holds, to open what any of them sealed.
    pub fn ring(&self) -> &Keyring {
        &self.ring
    }

    /// The id of the key new credentials are sealed under.
    pub fn seal_id(&self) -> &str {
        &self.seal_id
    }

    pub fn seal(&self, binding: Binding<'_>, credentials: &Credentials) -> SealedCredentials {
        self.ring.seal_under(&self.seal_id, binding, credentials)
    }

    pub fn cursors(&self) -> &CursorKeys {
        &self.cursors
    }
}

pub struct LiveKeys {
    state: RwLock<Arc<KeyState>>,
    reload: Option<Reload>,
    /// When each unknown key id last caused a re-read. Held across the re-read, so that
    /// callers who meet the same record at once wait for its outcome instead of failing.
    learned_at: Mutex<std::collections::HashMap<String, Instant>>,
}

impl LiveKeys {
    /// Keys that never change (tests, and tools that run once).
    pub fn fixed(ring: Arc<Keyring>) -> LiveKeys {
        let newest = ring.current().id().to_owned();
        LiveKeys {
            state: RwLock::new(Arc::new(KeyState::new(ring, newest))),
            reload: None,
            learned_at: Mutex::new(Default::default()),
        }
    }

    /// Keys that `reload` reads again when asked.
    pub fn reloadable(ring: Arc<Keyring>, reload: Reload) -> LiveKeys {
        LiveKeys {
            reload: Some(reload),
            ..LiveKeys::fixed(ring)
        }
    }

    /// The keys as they are now.
    pub fn state(&self) -> Arc<KeyState> {
        self.state.read().expect("key state").clone()
    }

    /// Reads the key configuration again and adds the keys it names. Returns whether a key
    /// was added. A key that the configuration no longer names is kept until the process
    /// restarts (with a warning): dropping it at once would make what it sealed read ERROR, if
    /// the file was edited by mistake or read half-written. A configuration that does not read
    /// leaves the keys as they were.
    pub fn reload(&self) -> Result<bool, String> {
        let Some(reload) = &self.reload else {
            return Ok(false);
        };
        let read = reload()?;
        let mut state = self.state.write().expect("key state");
        let held = state.ring.ids();
        let named = read.ids();
        for gone in held.iter().filter(|id| !named.contains(id)) {
            tracing::warn!(
                key = gone,
                "the key configuration no longer names this master key; it stays held until restart"
            );
        }
        if named.iter().all(|id| held.contains(id)) {
            return Ok(false);
        }
        // The held keys the configuration dropped, oldest first, then the configuration's own
        // order, whose last key is the newest.
        let mut keks: Vec<crate::secrets::Kek> = state
            .ring
            .keks()
            .iter()
            .filter(|k| !named.contains(&k.id()))
            .cloned()
            .collect();
        keks.extend(read.keks().iter().cloned());
        let ring = Keyring::new(keks)?;
        // The sealing key stays until the heartbeat finds that every replica holds a newer one.
        let seal_id = state.seal_id.clone();
        *state = Arc::new(KeyState::new(Arc::new(ring), seal_id));
        Ok(true)
    }

    /// After meeting a record sealed under `kek_id`, which this server does not hold: reads
    /// the configuration again unless that was done for this key id less than `LEARN_GAP`
    /// ago. Returns whether the key is held now.
    pub fn learn(&self, kek_id: &str) -> bool {
        if self.state().ring.ids().contains(&kek_id) {
            return true;
        }
        if self.reload.is_none() {
            return false;
        }
        let mut learned = self.learned_at.lock().expect("learn gate");
        // Another caller may have learned it while this one waited for the gate.
        if self.state().ring.ids().contains(&kek_id) {
            return true;
        }
        if learned.get(kek_id).is_some_and(|t| t.elapsed() < LEARN_GAP) {
            return false;
        }
        learned.insert(kek_id.to_owned(), Instant::now());
        learned.retain(|_, t| t.elapsed() < LEARN_GAP);
        if let Err(e) = self.reload() {
            tracing::warn!(error = %e, "cannot read the master keys again");
        }
        self.state().ring.ids().contains(&kek_id)
    }

    /// Seals new credentials under the newest of this server's keys that every one of
    /// `replicas` (the key ids each live replica reported) holds; with none in common, this
    /// server's newest. Returns the id now in use.
    pub fn seal_under_common(&self, replicas: &[Vec<String>]) -> String {
        let mut state = self.state.write().expect("key state");
        let ids = state.ring.ids();
        let common = ids
            .iter()
            .rev()
            .find(|id| replicas.iter().all(|held| held.iter().any(|h| h == *id)))
            .copied()
            .unwrap_or_else(|| state.ring.current().id())
            .to_owned();
        if common != state.seal_id {
            tracing::info!(
                from = %state.seal_id,
                to = %common,
                "new credentials are sealed under another master key"
            );
            *state = Arc::new(KeyState::new(state.ring.clone(), common.clone()));
        }
        common
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        secrets::Kek,
        tenant::{OrgId, ProjectId, TenantScope},
    };

    fn ring(keys: &[&Kek]) -> Keyring {
        Keyring::new(
            keys.iter()
                .map(|k| Kek::from_base64(&k.to_base64()).unwrap())
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_new_key_is_learned_and_sealed_under_only_when_every_replica_holds_it() {
        let (old, new) = (Kek::generate(), Kek::generate());
        let file = Arc::new(Mutex::new(vec![
            Kek::from_base64(&old.to_base64()).unwrap(),
        ]));
        let source = file.clone();
        let reload: Reload = Arc::new(move || {
            let keys = source.lock().unwrap();
            Keyring::new(
                keys.iter()
                    .map(|k| Kek::from_base64(&k.to_base64()).unwrap())
                    .collect(),
            )
        });
        let live = LiveKeys::reloadable(Arc::new(ring(&[&old])), reload);
        assert!(!live.reload().unwrap(), "nothing changed");
        file.lock()
            .unwrap()
            .push(Kek::from_base64(&new.to_base64()).unwrap());
        assert!(live.reload().unwrap());
        // Held now, but not sealed under until every replica holds it.
        assert_eq!(live.state().ring().ids(), [old.id(), new.id()]);
        assert_eq!(live.state().seal_id(), old.id());
        let other_replica = vec![old.id().to_owned()];
        let me = vec![old.id().to_owned(), new.id().to_owned()];
        assert_eq!(
            live.seal_under_common(&[me.clone(), other_replica]),
            old.id()
        );
        assert_eq!(live.seal_under_common(&[me.clone(), me]), new.id());
        let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
        let binding = Binding {
            scope: &scope,
            record_id: uuid::Uuid::now_v7(),
        };
        let c: Credentials = serde_json::from_str(r#"{"k":"v"}"#).unwrap();
        assert_eq!(live.state().seal(binding, &c).kek_id, new.id());
    }

    #[test]
    fn a_key_the_configuration_drops_stays_held() {
        let (old, new) = (Kek::generate(), Kek::generate());
        let only_new = new.to_base64();
        let reload: Reload =
            Arc::new(move || Keyring::new(vec![Kek::from_base64(&only_new).unwrap()]));
        let live = LiveKeys::reloadable(Arc::new(ring(&[&old])), reload);
        assert!(live.reload().unwrap());
        assert_eq!(live.state().ring().ids(), [old.id(), new.id()]);
        assert!(!live.reload().unwrap(), "nothing new the second time");
    }

    #[test]
    fn an_unknown_key_is_learned_at_most_once_per_gap() {
        let (old, new) = (Kek::generate(), Kek::generate());
        let reads = Arc::new(Mutex::new(0));
        let counter = reads.clone();
        let both = [old.to_base64(), new.to_base64()];
        let reload: Reload = Arc::new(move || {
            *counter.lock().unwrap() += 1;
            Keyring::new(both.iter().map(|k| Kek::from_base64(k).unwrap()).collect())
        });
        let live = LiveKeys::reloadable(Arc::new(ring(&[&old])), reload);
        assert!(live.learn(new.id()));
        assert!(live.learn(new.id()), "held now: no re-read");
        assert!(!live.learn("k000000000000"));
        assert!(!live.learn("k000000000000"));
        assert_eq!(
            *reads.lock().unwrap(),
            2,
            "one re-read per unknown key and gap"
        );
        assert!(!LiveKeys::fixed(Arc::new(ring(&[&old]))).learn(new.id()));
    }
}
