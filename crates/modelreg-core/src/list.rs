//! The list query of `GET /assets/models` (SPEC §2.1): parameters, sort, keyset cursor.
//!
//! A cursor is opaque to clients: base64url of a small JSON document holding the sort, the
//! filters and the last row's sort values and id, then `.` and a MAC of those bytes under a key
//! every replica shares ([`CursorKeys`]). A cursor this deployment did not issue, or one changed in any field,
//! is a 422: its values never reach a query unless the server wrote them. A request that
//! carries a cursor uses the cursor's sort and filters, so `?cursor=…` alone fetches the next
//! page; sort or filter parameters sent beside a cursor must equal the cursor's.

use std::{fmt, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{
    error::{Error, FieldError},
    model::{Mode, Model, Status},
    validate,
};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
pub const MAX_PAGE: u32 = i32::MAX as u32;
pub const MAX_SEARCH_LEN: usize = 255;
pub const MAX_QUERY_PARAMS: usize = 100;
const MAX_CURSOR_LEN: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortField {
    Name,
    ResourceUri,
    LitellmModel,
    Provider,
    Status,
    Mode,
    CreatedAt,
    UpdatedAt,
}

impl SortField {
    pub const ALL: [SortField; 8] = [
        SortField::Name,
        SortField::ResourceUri,
        SortField::LitellmModel,
        SortField::Provider,
        SortField::Status,
        SortField::Mode,
        SortField::CreatedAt,
        SortField::UpdatedAt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortField::Name => "name",
            SortField::ResourceUri => "resource_uri",
            SortField::LitellmModel => "litellm_model",
            SortField::Provider => "provider",
            SortField::Status => "status",
            SortField::Mode => "mode",
            SortField::CreatedAt => "created_at",
            SortField::UpdatedAt => "updated_at",
        }
    }

    /// The model's value for this field exactly as the store compares it: text, with a null
    /// provider or mode as the empty string (so nulls sort first in ascending order on every
    /// backend).
    pub fn value_of(self, m: &Model) -> String {
        match self {
            SortField::Name => m.fields.name.clone(),
            SortField::ResourceUri => m.resource_uri.as_str().to_owned(),
            SortField::LitellmModel => m.fields.litellm_model.clone(),
            SortField::Provider => m.fields.provider.clone().unwrap_or_default(),
            SortField::Status => m.fields.status.as_str().to_owned(),
            SortField::Mode => m.fields.mode.map(|x| x.as_str()).unwrap_or("").to_owned(),
            SortField::CreatedAt => m.created_at.to_string(),
            SortField::UpdatedAt => m.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    pub field: SortField,
    pub desc: bool,
}

/// Parses `field:order,field:order`. `id` is not listed: it is always the final tiebreaker.
pub fn parse_sort(s: &str) -> Result<Vec<SortKey>, String> {
    let mut keys: Vec<SortKey> = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err("has an empty entry; use field:order pairs joined by commas".into());
        }
        let (field, order) = part.split_once(':').unwrap_or((part, "asc"));
        let field = SortField::ALL
            .into_iter()
            .find(|f| f.as_str() == field.trim())
            .ok_or_else(|| {
                format!(
                    "has an unknown field; allowed: {}",
                    SortField::ALL.map(|f| f.as_str()).join(", ")
                )
            })?;
        let desc = match order.trim() {
            "asc" => false,
            "desc" => true,
            _ => {
                return Err(format!(
                    "has an unknown order for {}; use asc or desc",
                    field.as_str()
                ));
            }
        };
        if keys.iter().any(|k| k.field == field) {
            return Err(format!("sorts by {} twice", field.as_str()));
        }
        keys.push(SortKey { field, desc });
    }
    Ok(keys)
}

pub fn default_sort() -> Vec<SortKey> {
    vec![SortKey {
        field: SortField::CreatedAt,
        desc: true,
    }]
}

/// Filters of the list. All of them combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    /// Lower-cased needle, matched as a substring of the lower-cased name or description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The model must have every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Leave out DISABLED models (the usable ones, as `/v1/models` lists them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub usable_only: bool,
}

impl Filters {
    /// No filter at all: every model of the project matches.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// Where a keyset page starts: after the row with these sort values and this id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct After {
    pub values: Vec<String>,
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CursorDoc {
    v: u8,
    sort: Vec<SortKey>,
    filters: Filters,
    after: After,
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

/// The bytes of a cursor's MAC that are kept: 128 bits.
const MAC_LEN: usize = 16;

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

/// How the page is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    Page(u32),
    After(After),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub paging: Paging,
    pub limit: u32,
    pub filters: Filters,
    pub sort: Vec<SortKey>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            paging: Paging::Page(1),
            limit: DEFAULT_LIMIT,
            filters: Filters::default(),
            sort: default_sort(),
        }
    }
}

/// One page as the store returns it.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<Model>,
    /// Rows matching the filters, ignoring paging.
    pub total_items: u64,
    /// Whether rows follow the last item of this page.
    pub has_more: bool,
    /// The project's generation (bumped by every write to it) in the page's own snapshot, when
    /// the store read it: the page is exactly what any read at that generation would return.
    pub generation: Option<i64>,
}

impl ListQuery {
    /// The direction of the `id` tiebreaker: that of the last sort key.
    pub fn id_desc(&self) -> bool {
        self.sort.last().map(|k| k.desc).unwrap_or(true)
    }

    /// Rows to skip in page mode.
    pub fn offset(&self) -> u64 {
        match self.paging {
            Paging::Page(p) => u64::from(p - 1) * u64::from(self.limit),
            Paging::After(_) => 0,
        }
    }

    /// The keyset position just after `last` in this query's sort.
    pub fn after(&self, last: &Model) -> After {
        After {
            values: self.sort.iter().map(|k| k.field.value_of(last)).collect(),
            id: last.id,
        }
    }

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

    /// Parses the query string's pairs; a cursor must be one sealed with `cursors`. Unknown
    /// parameters are ignored, as the platform we are compatible with does; a parameter given
    /// twice is an error.
    pub fn parse(pairs: &[(String, String)], cursors: &CursorKeys) -> Result<ListQuery, Error> {
        if pairs.len() > MAX_QUERY_PARAMS {
            return Err(Error::InvalidRequest(format!(
                "too many query parameters ({}); at most {MAX_QUERY_PARAMS} are accepted",
                pairs.len()
            )));
        }
        let mut errors: Vec<FieldError> = Vec::new();
        let mut fail = |field: &str, kind: &'static str, msg: String| {
            errors.push(FieldError::new(&["query", field], kind, msg));
        };
        let known = [
            "page",
            "limit",
            "search",
            "status",
            "mode",
            "tags",
            "sort",
            "created_by",
            "owner_id",
            "provider",
            "cursor",
        ];
        for name in known {
            if pairs.iter().filter(|(k, _)| k == name).count() > 1 {
                fail(name, "duplicate", "given more than once".into());
            }
        }
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };

        let mut number = |name: &str, default: u32, max: u32| -> u32 {
            let Some(raw) = get(name) else {
                return default;
            };
            match raw.trim().parse::<i64>() {
                Ok(n) if n >= 1 && n <= i64::from(max) => n as u32,
                Ok(n) => {
                    fail(
                        name,
                        "int_range",
                        format!("must be between 1 and {max} (got {n})"),
                    );
                    default
                }
                Err(_) => {
                    fail(name, "int_parsing", "must be an integer".into());
                    default
                }
            }
        };
        let page = number("page", 1, MAX_PAGE);
        let limit = number("limit", DEFAULT_LIMIT, MAX_LIMIT);

        let mut filters = Filters::default();
        if let Some(s) = get("search").filter(|s| !s.is_empty()) {
            if s.contains('\0') {
                fail(
                    "search",
                    "string_nul",
                    "must not contain NUL characters".into(),
                );
            } else if s.chars().count() > MAX_SEARCH_LEN {
                fail(
                    "search",
                    "string_too_long",
                    format!("must be at most {MAX_SEARCH_LEN} characters"),
                );
            } else {
                filters.search = Some(s.to_lowercase());
            }
        }
        if let Some(s) = get("status") {
            match Status::parse(s) {
                Some(v) => filters.status = Some(v),
                None => fail(
                    "status",
                    "enum",
                    format!(
                        "must be one of {}",
                        Status::ALL.map(|s| s.as_str()).join(", ")
                    ),
                ),
            }
        }
        if let Some(s) = get("mode") {
            match Mode::parse(s) {
                Some(v) => filters.mode = Some(v),
                None => fail(
                    "mode",
                    "enum",
                    format!(
                        "must be one of {}",
                        Mode::ALL.map(|m| m.as_str()).join(", ")
                    ),
                ),
            }
        }
        if let Some(s) = get("tags").filter(|s| !s.is_empty()) {
            let list: Vec<String> = s.split(',').map(|t| t.trim().to_owned()).collect();
            match validate::tags(list) {
                Ok(t) => filters.tags = t,
                Err((kind, msg)) => fail("tags", kind, msg),
            }
        }
        let created_by = get("created_by").filter(|s| !s.is_empty());
        let owner_id = get("owner_id").filter(|s| !s.is_empty());
        match (created_by, owner_id) {
            (Some(a), Some(b)) if a != b => fail(
                "owner_id",
                "conflict",
                "is a deprecated alias of created_by and must not differ from it".into(),
            ),
            (Some(a), _) | (None, Some(a)) => filters.created_by = Some(a.to_owned()),
            (None, None) => {}
        }
        if let Some(p) = get("provider").filter(|s| !s.is_empty()) {
            filters.provider = Some(p.to_owned());
        }
        for (field, v) in [
            ("created_by", &filters.created_by),
            ("provider", &filters.provider),
        ] {
            if let Some(v) = v
                && (v.contains('\0') || v.chars().count() > 255)
            {
                fail(
                    field,
                    "string_invalid",
                    "must be at most 255 characters without NUL".into(),
                );
            }
        }

        let sort_param = get("sort").filter(|s| !s.trim().is_empty());
        let sort = match sort_param.map(parse_sort) {
            None => default_sort(),
            Some(Ok(s)) => s,
            Some(Err(msg)) => {
                fail("sort", "sort", msg);
                default_sort()
            }
        };

        let mut query = ListQuery {
            paging: Paging::Page(page),
            limit,
            filters: filters.clone(),
            sort,
        };
        if let Some(raw) = get("cursor").filter(|s| !s.is_empty()) {
            match decode_cursor(raw, cursors) {
                Err(msg) => fail("cursor", "cursor", msg),
                Ok(doc) => {
                    let filters_sent = filters != Filters::default();
                    if (sort_param.is_some() && doc.sort != query.sort)
                        || (filters_sent && doc.filters != filters)
                    {
                        fail(
                            "cursor",
                            "cursor_mismatch",
                            "was issued for a different sort or filter; send the cursor alone or with the same parameters".into(),
                        );
                    }
                    query.sort = doc.sort;
                    query.filters = doc.filters;
                    query.paging = Paging::After(doc.after);
                }
            }
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(Error::Validation(errors))
        }
    }
}

/// `page` and `limit` alone, with the rules of the model list, for the other paginated lists
/// (history, audit).
pub fn page_and_limit(pairs: &[(String, String)]) -> Result<(u32, u32), Error> {
    let mut errors = Vec::new();
    let mut number = |name: &str, default: u32, max: u32| -> u32 {
        let values: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        match values.as_slice() {
            [] => default,
            [one] => match one.trim().parse::<i64>() {
                Ok(n) if n >= 1 && n <= i64::from(max) => n as u32,
                _ => {
                    errors.push(FieldError::new(
                        &["query", name],
                        "int_range",
                        format!("must be an integer between 1 and {max}"),
                    ));
                    default
                }
            },
            _ => {
                errors.push(FieldError::new(
                    &["query", name],
                    "duplicate",
                    "given more than once",
                ));
                default
            }
        }
    };
    let page = number("page", 1, MAX_PAGE);
    let limit = number("limit", DEFAULT_LIMIT, MAX_LIMIT);
    if errors.is_empty() {
        Ok((page, limit))
    } else {
        Err(Error::Validation(errors))
    }
}

fn decode_cursor(raw: &str, keys: &CursorKeys) -> Result<CursorDoc, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> CursorKeys {
        CursorKeys::new(vec![Zeroizing::new([7u8; 32])])
    }

    fn q(s: &str) -> Result<ListQuery, Error> {
        let pairs: Vec<(String, String)> = form_pairs(s);
        ListQuery::parse(&pairs, &keys())
    }

    /// `doc` sealed as the server seals cursors, under `keys`.
    fn sealed(doc: CursorDoc, keys: &CursorKeys) -> String {
        keys.seal(&serde_json::to_vec(&doc).unwrap())
    }

    fn doc(values: &[&str]) -> CursorDoc {
        CursorDoc {
            v: 1,
            sort: vec![SortKey {
                field: SortField::CreatedAt,
                desc: true,
            }],
            filters: Filters::default(),
            after: After {
                values: values.iter().map(|v| (*v).to_owned()).collect(),
                id: Uuid::nil(),
            },
        }
    }

    fn form_pairs(s: &str) -> Vec<(String, String)> {
        s.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn err_fields(s: &str) -> Vec<String> {
        match q(s) {
            Err(Error::Validation(v)) => v.iter().map(|e| e.field()).collect(),
            other => panic!("{s}: expected 422, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let d = q("").unwrap();
        assert_eq!(d, ListQuery::default());
        assert_eq!(d.offset(), 0);
        assert!(d.id_desc());
    }

    #[test]
    fn numbers() {
        assert_eq!(q("page=3&limit=100").unwrap().offset(), 200);
        for bad in [
            "page=0",
            "page=abc",
            "page=-1",
            "page=2147483648",
            "limit=0",
            "limit=101",
            "limit=1.5",
        ] {
            assert_eq!(err_fields(bad).len(), 1, "{bad}");
        }
    }

    #[test]
    fn sort_expressions() {
        let s = q("sort=name:asc,created_at:desc").unwrap().sort;
        assert_eq!(
            s,
            [
                SortKey {
                    field: SortField::Name,
                    desc: false
                },
                SortKey {
                    field: SortField::CreatedAt,
                    desc: true
                }
            ]
        );
        assert!(!q("sort=provider").unwrap().sort[0].desc);
        for bad in [
            "sort=foo:up",
            "sort=name:up",
            "sort=foo",
            "sort=name,,mode",
            "sort=name,name:desc",
            "sort=id",
        ] {
            assert_eq!(err_fields(bad), ["sort"], "{bad}");
        }
    }

    #[test]
    fn filters() {
        let f =
            q("search=GPT&status=ACTIVE&mode=chat&tags=a, b&created_by=user:al&provider=openai")
                .unwrap()
                .filters;
        assert_eq!(f.search.as_deref(), Some("gpt"));
        assert_eq!(f.status, Some(Status::Active));
        assert_eq!(f.mode, Some(Mode::Chat));
        assert_eq!(f.tags, ["a", "b"]);
        assert_eq!(f.created_by.as_deref(), Some("user:al"));
        assert_eq!(
            q("owner_id=user:x").unwrap().filters.created_by.as_deref(),
            Some("user:x")
        );
        assert_eq!(err_fields("status=active"), ["status"]);
        assert_eq!(err_fields("mode=CHAT"), ["mode"]);
        assert_eq!(err_fields("tags=a,,b"), ["tags"]);
        assert_eq!(err_fields("created_by=a&owner_id=b"), ["owner_id"]);
        assert_eq!(err_fields("page=1&page=2"), ["page"]);
        assert_eq!(
            err_fields("limit=0&sort=x&status=y"),
            ["limit", "status", "sort"]
        );
    }

    #[test]
    fn too_many_parameters_is_a_clear_400() {
        let many = (0..10_000)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert!(matches!(q(&many), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn cursor_garbage_is_rejected() {
        for bad in [
            "cursor=abc",
            "cursor=%%%",
            &format!("cursor={}", URL_SAFE_NO_PAD.encode(b"{}")),
        ] {
            assert_eq!(err_fields(bad), ["cursor"], "{bad}");
        }
        // Sealed, but breaking the parameters' rules: still refused.
        let mut bad_filter = doc(&["2026-01-01T00:00:00.000000Z"]);
        bad_filter.filters.search = Some("UPPER".into());
        let raw = sealed(bad_filter, &keys());
        assert_eq!(err_fields(&format!("cursor={raw}")), ["cursor"]);
    }

    #[test]
    fn only_an_untouched_cursor_of_this_deployment_is_accepted() {
        let good = doc(&["2026-01-01T00:00:00.000000Z"]);
        let query = q(&format!("cursor={}", sealed(good.clone(), &keys()))).unwrap();
        assert_eq!(query.paging, Paging::After(good.after.clone()));
        // Any change to a sealed cursor, a cursor without its seal, and one sealed under
        // another key: all refused, whatever the value.
        let raw = sealed(good.clone(), &keys());
        let (payload, tag) = raw.split_once('.').unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        json["after"]["values"][0] = "not-a-time".into();
        let tampered = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap())
        );
        // The same document with different whitespace is other bytes: refused too.
        let respaced = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec_pretty(&good).unwrap())
        );
        let unsealed = payload.to_owned();
        let foreign = sealed(good.clone(), &CursorKeys::ephemeral());
        for bad in [tampered, respaced, unsealed, foreign] {
            assert_eq!(err_fields(&format!("cursor={bad}")), ["cursor"], "{bad}");
        }
        // After a key rotation the older key still opens what it sealed.
        let rotated = CursorKeys::new(vec![Zeroizing::new([8u8; 32]), Zeroizing::new([7u8; 32])]);
        let pairs = form_pairs(&format!("cursor={raw}"));
        assert!(ListQuery::parse(&pairs, &rotated).is_ok());
    }
}
