//! The list's query parameters as a client sends them, and their conversion into a
//! [`ListQuery`] with every invalid parameter reported at once.

use std::sync::LazyLock;

use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    DEFAULT_LIMIT, Filters, ListQuery, MAX_LIMIT, MAX_PAGE, MAX_QUERY_PARAMS, MAX_SEARCH_LEN,
    Paging, Price, SortField, SortKey, cursor::decode_cursor, default_sort,
};
use crate::{
    catalog::Capability,
    error::{Error, FieldError},
    list::CursorKeys,
    model::{Mode, Status},
    validate,
};

/// The query parameters of `GET /assets/models`, each as the text the client sent: read by
/// [`ListParams::from_pairs`], described in the OpenAPI document by `IntoParams`, and turned
/// into a [`ListQuery`] by [`ListParams::into_query`].
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 2147483647, default = 1)]
    pub page: Option<String>,
    /// Items per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<String>,
    /// Case-insensitive substring of the name or the description.
    #[param(max_length = 255)]
    pub search: Option<String>,
    /// Exact status.
    #[param(value_type = Option<Status>, inline)]
    pub status: Option<String>,
    /// Exact mode.
    #[param(value_type = Option<Mode>, inline)]
    pub mode: Option<String>,
    /// Comma-separated; a model matches when it has every listed tag.
    pub tags: Option<String>,
    /// `field:order` pairs joined by commas, e.g. `name:asc,created_at:desc`. Fields: name,
    /// resource_uri, litellm_model, provider, status, mode, created_at, updated_at,
    /// input_cost_per_token, max_input_tokens. Default `created_at:desc`; `id` is always the
    /// final tiebreaker. A model without a value (no provider, no price) sorts first in
    /// ascending order and last in descending order.
    pub sort: Option<String>,
    /// Exact creator, e.g. `user:alice`.
    pub created_by: Option<String>,
    /// Deprecated alias of `created_by`.
    #[deprecated = "use created_by"]
    pub owner_id: Option<String>,
    /// Exact provider.
    pub provider: Option<String>,
    /// Comma-separated capabilities (vision, function_calling, parallel_function_calling,
    /// tool_choice, response_schema, reasoning, prompt_caching, audio_input, audio_output,
    /// pdf_input, video_input, web_search, computer_use, system_messages, assistant_prefill);
    /// a model matches when it has every one.
    pub capability: Option<String>,
    /// Models whose `max_input_tokens` is at least this; a model without one does not match.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub min_input_tokens: Option<String>,
    /// Models whose `input_cost_per_token` (USD) is at most this; a model without one does
    /// not match.
    #[param(value_type = Option<f64>, minimum = 0)]
    pub max_input_cost: Option<String>,
    /// Keyset cursor from `pagination.next_cursor`; `page` is then ignored.
    pub cursor: Option<String>,
    /// The parameters above that were given more than once: each is an error.
    #[serde(skip)]
    repeated: Vec<&'static str>,
}

/// The names of the parameters, as the document lists them.
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ListParams::into_params(|| None)
        .into_iter()
        .map(|p| p.name)
        .collect()
});

/// A broken rule: the error's kind and message.
type Broken = (&'static str, String);

impl ListParams {
    /// The parameters of a decoded query string. Unknown parameters are ignored, as the
    /// platform we are compatible with does; of one given twice the first is read, and the
    /// repeat is reported by [`ListParams::into_query`]. More than [`MAX_QUERY_PARAMS`] pairs
    /// are refused outright, so a long query costs nothing more.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<ListParams, Error> {
        if pairs.len() > MAX_QUERY_PARAMS {
            return Err(Error::InvalidRequest(format!(
                "too many query parameters ({}); at most {MAX_QUERY_PARAMS} are accepted",
                pairs.len()
            )));
        }
        // The first value of each name, as a map serde reads (a repeated field would end the
        // deserialization at the first repeat, with its other errors unreported).
        let mut first = serde_json::Map::new();
        for (k, v) in pairs {
            first
                .entry(k.as_str())
                .or_insert_with(|| serde_json::Value::String(v.clone()));
        }
        let mut params = ListParams::deserialize(serde_json::Value::Object(first))
            .map_err(|e| Error::Internal(format!("list parameters: {e}")))?;
        params.repeated = NAMES
            .iter()
            .filter(|name| pairs.iter().filter(|(k, _)| k == *name).count() > 1)
            .map(String::as_str)
            .collect();
        Ok(params)
    }

    /// The query these parameters ask for; a cursor must be one sealed with `cursors`. Every
    /// invalid parameter is reported in the one error.
    pub fn into_query(self, cursors: &CursorKeys) -> Result<ListQuery, Error> {
        let mut report = Report::default();
        for name in &self.repeated {
            report.fail(name, "duplicate", "given more than once");
        }
        let page = report.check("page", self.page.as_deref(), |s| number(s, MAX_PAGE));
        let limit = report.check("limit", self.limit.as_deref(), |s| number(s, MAX_LIMIT));
        let search = report.check("search", given(&self.search), search);
        let status = report.check("status", self.status.as_deref(), |s| {
            variant(s, Status::parse, Status::ALL.map(Status::as_str))
        });
        let mode = report.check("mode", self.mode.as_deref(), |s| {
            variant(s, Mode::parse, Mode::ALL.map(Mode::as_str))
        });
        let tags = report.check("tags", given(&self.tags), |s| {
            validate::tags(s.split(',').map(|t| t.trim().to_owned()).collect())
        });
        #[allow(deprecated)] // the alias is read here, and only here
        let owner_id = given(&self.owner_id);
        let created_by = match (given(&self.created_by), owner_id) {
            (Some(a), Some(b)) if a != b => {
                report.fail(
                    "owner_id",
                    "conflict",
                    "is a deprecated alias of created_by and must not differ from it",
                );
                None
            }
            (a, b) => a.or(b),
        };
        let created_by = report.check("created_by", created_by, exact);
        let provider = report.check("provider", given(&self.provider), exact);
        let capabilities = report.check("capability", given(&self.capability), capabilities);
        let min_input_tokens = report.check(
            "min_input_tokens",
            given(&self.min_input_tokens),
            at_least_one,
        );
        let max_input_cost = report.check("max_input_cost", given(&self.max_input_cost), price);
        let sort_param = self.sort.as_deref().filter(|s| !s.trim().is_empty());
        let sort = report.check("sort", sort_param, |s| {
            parse_sort(s).map_err(|m| ("sort", m))
        });

        let mut query = ListQuery {
            paging: Paging::Page(page.unwrap_or(1)),
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            filters: Filters {
                search,
                status,
                mode,
                tags: tags.unwrap_or_default(),
                created_by,
                provider,
                usable_only: false,
                capabilities: capabilities.unwrap_or_default(),
                min_input_tokens,
                max_input_cost,
            },
            sort: sort.unwrap_or_else(default_sort),
        };
        let cursor = report.check("cursor", given(&self.cursor), |raw| {
            decode_cursor(raw, cursors).map_err(|msg| ("cursor", msg))
        });
        if let Some(doc) = cursor {
            if (sort_param.is_some() && doc.sort != query.sort)
                || (!query.filters.is_empty() && doc.filters != query.filters)
            {
                report.fail(
                    "cursor",
                    "cursor_mismatch",
                    "was issued for a different sort or filter; send the cursor alone or with the same parameters",
                );
            }
            query.sort = doc.sort;
            query.filters = doc.filters;
            query.paging = Paging::After(doc.after);
        }
        report.finish(query)
    }
}

impl ListQuery {
    /// The query of a decoded query string: [`ListParams::from_pairs`], then
    /// [`ListParams::into_query`].
    pub fn parse(pairs: &[(String, String)], cursors: &CursorKeys) -> Result<ListQuery, Error> {
        ListParams::from_pairs(pairs)?.into_query(cursors)
    }
}

/// The invalid parameters found so far.
#[derive(Default)]
struct Report(Vec<FieldError>);

impl Report {
    fn fail(&mut self, field: &str, kind: &'static str, msg: impl Into<String>) {
        self.0.push(FieldError::new(&["query", field], kind, msg));
    }

    /// `raw`, when given, checked by `rule`; a broken rule is reported, and the parameter
    /// then counts as absent.
    fn check<T>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        rule: impl FnOnce(&str) -> Result<T, Broken>,
    ) -> Option<T> {
        rule(raw?)
            .map_err(|(kind, msg)| self.fail(field, kind, msg))
            .ok()
    }

    fn finish<T>(self, value: T) -> Result<T, Error> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Error::Validation(self.0))
        }
    }
}

/// A parameter that counts only when not empty.
fn given(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().filter(|s| !s.is_empty())
}

fn number(raw: &str, max: u32) -> Result<u32, Broken> {
    match raw.trim().parse::<i64>() {
        Ok(n) if n >= 1 && n <= i64::from(max) => Ok(n as u32),
        Ok(n) => Err((
            "int_range",
            format!("must be between 1 and {max} (got {n})"),
        )),
        Err(_) => Err(("int_parsing", "must be an integer".into())),
    }
}

fn search(raw: &str) -> Result<String, Broken> {
    if raw.contains('\0') {
        Err(("string_nul", "must not contain NUL characters".into()))
    } else if raw.chars().count() > MAX_SEARCH_LEN {
        Err((
            "string_too_long",
            format!("must be at most {MAX_SEARCH_LEN} characters"),
        ))
    } else {
        Ok(raw.to_lowercase())
    }
}

fn variant<T, const N: usize>(
    raw: &str,
    parse: fn(&str) -> Option<T>,
    names: [&str; N],
) -> Result<T, Broken> {
    parse(raw).ok_or_else(|| ("enum", format!("must be one of {}", names.join(", "))))
}

/// An exact-match filter: a creator or a provider.
fn exact(raw: &str) -> Result<String, Broken> {
    if raw.contains('\0') || raw.chars().count() > 255 {
        return Err((
            "string_invalid",
            "must be at most 255 characters without NUL".into(),
        ));
    }
    Ok(raw.to_owned())
}

/// Capabilities joined by commas, as the catalog's own filter takes them (an empty entry is
/// skipped): in the set's order, without duplicates. An unknown one is named by the allowed
/// values, not quoted (no error message quotes what the client sent).
fn capabilities(raw: &str) -> Result<Vec<Capability>, Broken> {
    let mut out = raw
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(Capability::parse)
        .collect::<Option<Vec<Capability>>>()
        .ok_or_else(|| {
            (
                "capability",
                format!(
                    "has an unknown capability; use any of {}",
                    Capability::ALL.map(Capability::as_str).join(", ")
                ),
            )
        })?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A bound on a token count: a whole number of at least 1.
fn at_least_one(raw: &str) -> Result<i64, Broken> {
    match raw.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err(("int_range", "must be at least 1".into())),
        Err(_) => Err(("int_parsing", "must be a whole number of at least 1".into())),
    }
}

/// A bound on a price per token in USD: a finite number, not negative.
fn price(raw: &str) -> Result<Price, Broken> {
    let t = raw.trim();
    // Rust reads "inf" and "NaN" as numbers; a price is written in digits.
    let digits = !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    match t.parse::<f64>() {
        Ok(v) if digits => Price::new(v).ok_or((
            "number_range",
            "must be a finite number of at least 0".into(),
        )),
        _ => Err(("number_parsing", "must be a number".into())),
    }
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

/// `page` and `limit` alone, with the rules of the model list, for the other paginated lists
/// (history, audit).
pub fn page_and_limit(pairs: &[(String, String)]) -> Result<(u32, u32), Error> {
    let mut report = Report::default();
    let mut number = |name: &str, default: u32, max: u32| -> u32 {
        let mut values = pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim());
        let first = values.next();
        if values.next().is_some() {
            report.fail(name, "duplicate", "given more than once");
            return default;
        }
        let rule = |v: &str| match v.parse::<i64>() {
            Ok(n) if n >= 1 && n <= i64::from(max) => Ok(n as u32),
            _ => Err((
                "int_range",
                format!("must be an integer between 1 and {max}"),
            )),
        };
        report.check(name, first, rule).unwrap_or(default)
    };
    let page = number("page", 1, MAX_PAGE);
    let limit = number("limit", DEFAULT_LIMIT, MAX_LIMIT);
    report.finish((page, limit))
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use uuid::Uuid;
    use zeroize::Zeroizing;

    use super::*;
    use crate::list::{After, cursor::CursorDoc};

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
        assert_eq!(err_fields("capability=vision,telepathy"), ["capability"]);
        assert_eq!(err_fields("min_input_tokens=0"), ["min_input_tokens"]);
        assert_eq!(err_fields("min_input_tokens=1.5"), ["min_input_tokens"]);
        for bad in ["-1", "inf", "NaN", "1e400", "abc", "0x1"] {
            assert_eq!(
                err_fields(&format!("max_input_cost={bad}")),
                ["max_input_cost"],
                "{bad}"
            );
        }
        assert_eq!(err_fields("page=1&page=2"), ["page"]);
        assert_eq!(
            err_fields("limit=0&sort=x&status=y"),
            ["limit", "status", "sort"]
        );
    }

    #[test]
    fn catalog_filters() {
        use crate::catalog::Capability;
        // Capabilities in the set's order, once each, whatever order they were asked in: one
        // question, one key.
        let a = q("capability=vision,function_calling,vision,&min_input_tokens=128000&max_input_cost=0.000003")
            .unwrap()
            .filters;
        let b =
            q("capability= function_calling ,vision&min_input_tokens=128000&max_input_cost=3e-6")
                .unwrap()
                .filters;
        assert_eq!(a, b);
        assert_eq!(
            a.capabilities,
            [Capability::Vision, Capability::FunctionCalling]
        );
        assert_eq!(a.min_input_tokens, Some(128_000));
        assert_eq!(a.max_input_cost.map(Price::get), Some(0.000003));
        // -0 is 0.
        assert_eq!(
            q("max_input_cost=-0").unwrap().filters,
            q("max_input_cost=0").unwrap().filters
        );
        let s = q("sort=input_cost_per_token:desc,max_input_tokens")
            .unwrap()
            .sort;
        assert_eq!(
            s.iter().map(|k| (k.field, k.desc)).collect::<Vec<_>>(),
            [
                (SortField::InputCostPerToken, true),
                (SortField::MaxInputTokens, false)
            ]
        );
    }

    #[test]
    fn a_cursor_of_a_number_sort_carries_a_number_or_none() {
        let sorted = |value: &str| CursorDoc {
            sort: vec![SortKey {
                field: SortField::InputCostPerToken,
                desc: false,
            }],
            ..doc(&[value])
        };
        for good in ["", "0.0000025", "0", "1", "inf"] {
            let raw = sealed(sorted(good), &keys());
            assert!(q(&format!("cursor={raw}")).is_ok(), "{good:?}");
        }
        for bad in ["abc", "NaN", "2026-01-01T00:00:00.000000Z"] {
            let raw = sealed(sorted(bad), &keys());
            assert_eq!(err_fields(&format!("cursor={raw}")), ["cursor"], "{bad:?}");
        }
    }

    #[test]
    fn a_repeated_parameter_is_reported_with_the_others() {
        // An unknown parameter may repeat; a known one may not, and its first value is read.
        assert_eq!(
            err_fields("x=1&x=2&limit=0&page=1&page=abc&owner_id=a&owner_id=b"),
            ["page", "owner_id", "limit"]
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
