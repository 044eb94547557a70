//! The sealed keyset cursor: base64url of a small JSON document holding the sort, the filters
//! and the last row's sort values and id, then `.` and a MAC of those bytes under a key every
//! replica shares ([`CursorKeys`]). A cursor this deployment did not issue, or one changed in
//! any field, is refused: its values never reach a query unless the server wrote them.

use std::{fmt, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{After, Filters, ListQuery, MAX_SEARCH_LEN, SortField, SortKey};
use crate::{model::Model, validate};

const MAX_CURSOR_LEN: usize = 8192;

/// The bytes of a cursor's MAC that are kept: 128 bits.
const MAC_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct CursorDoc {
    pub(super) v: u8,
    pub(super) sort: Vec<SortKey>,
    pub(super) filters: Filters,
    pub(super) after: After,
}

/// The keys that seal cursors, newest first: derived from the master keys, so every replica
/// issues and accepts the same cursors. A cursor sealed under a key that has since been
/// retired is refused like a forged one, and the client starts again from the first page.
#[derive(Clone)]
pub struct CursorKeys(Arc<Vec<Zeroizing<[u8; 32]>>>);

impl fmt::Debug for CursorKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CursorKeys({} keys)", self.0.len())
    }
}

impl CursorKeys {
    /// `keys` newest first; at least one.
    pub fn new(keys: Vec<Zeroizing<[u8; 32]>>) -> Self {
        assert!(!keys.is_empty(), "cursor keys need at least one key");
        CursorKeys(Arc::new(keys))
    }

    /// A random key that only this process knows (tests, and tools that never see a cursor).
    pub fn ephemeral() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        crate::secrets::fill_random(key.as_mut_slice());
        CursorKeys::new(vec![key])
    }

    fn mac(key: &[u8; 32], bytes: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"modelreg-cursor-v1\0");
        mac.update(bytes);
        mac
    }

    /// A cursor of `payload`: `base64url(payload).base64url(mac)`, the MAC under the newest
    /// key. The MAC covers the bytes themselves, not a re-encoding of what they parse to, so
    /// nothing a decoder accepts or drops can change what was sealed.
    pub fn seal(&self, payload: &[u8]) -> String {
        let tag = Self::mac(&self.0[0], payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN])
        )
    }

    /// The payload of a cursor sealed with one of these keys; `None` for anything else.
    fn open(&self, cursor: &str) -> Option<Vec<u8>> {
        let (payload, tag) = cursor.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        (tag.len() == MAC_LEN
            && self
                .0
                .iter()
                .any(|k| Self::mac(k, &payload).verify_truncated_left(&tag).is_ok()))
        .then_some(payload)
    }
}

impl ListQuery {
    /// The cursor that continues after `last`, sealed with `keys`.
    pub fn cursor_after(&self, last: &Model, keys: &CursorKeys) -> String {
        let doc = CursorDoc {
            v: 1,
            sort: self.sort.clone(),
            filters: self.filters.clone(),
            after: self.after(last),
        };
        keys.seal(&serde_json::to_vec(&doc).expect("serializable"))
    }
}

/// The document of a cursor sealed with `keys`, held to the rules of the parameters.
pub(super) fn decode_cursor(raw: &str, keys: &CursorKeys) -> Result<CursorDoc, String> {
    const BAD: &str = "is not a cursor issued by this server";
    if raw.len() > MAX_CURSOR_LEN {
        return Err(BAD.into());
    }
    // The MAC first: a forged or altered cursor is refused whatever it holds, so no value in
    // it reaches a query (a sort value of the wrong type was once a 500 on PostgreSQL).
    let bytes = keys.open(raw.trim()).ok_or_else(|| BAD.to_string())?;
    let doc: CursorDoc = serde_json::from_slice(&bytes).map_err(|_| BAD.to_string())?;
    // The document came from a client: hold it to the same rules as parameters.
    let valid = doc.v == 1
        && !doc.sort.is_empty()
        && doc.sort.len() <= SortField::ALL.len()
        && doc.after.values.len() == doc.sort.len()
        && doc
            .after
            .values
            .iter()
            .all(|v| v.len() <= 2048 && !v.contains('\0'))
        && doc
            .filters
            .search
            .as_ref()
            .is_none_or(|s| s.chars().count() <= MAX_SEARCH_LEN && *s == s.to_lowercase())
        && validate::tags(doc.filters.tags.clone()).is_ok_and(|t| t == doc.filters.tags)
        && doc.filters.capabilities.is_sorted_by(|a, b| a < b)
        && doc.filters.min_input_tokens.is_none_or(|n| n >= 1)
        && doc
            .sort
            .iter()
            .zip(&doc.after.values)
            .all(|(k, v)| k.field.parse_value(v).is_some())
        && {
            let mut seen = doc
                .sort
                .iter()
                .map(|k| k.field.as_str())
                .collect::<Vec<_>>();
            seen.sort();
            seen.windows(2).all(|w| w[0] != w[1])
        };
    if valid { Ok(doc) } else { Err(BAD.into()) }
}
