//! Tags: the `tags` list filter (comma-separated) and the `tags` array of a model body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelreg_core::{
    list::{CursorKeys, ListQuery},
    validate::{MAX_TAG_LEN, MAX_TAGS, tags},
};

fuzz_target!(|data: &str| {
    if let Ok(q) = ListQuery::parse(
        &[("tags".to_owned(), data.to_owned())],
        &CursorKeys::ephemeral(),
    ) {
        for t in &q.filters.tags {
            assert!(!t.is_empty() && !t.contains(','));
        }
    }
    let list: Vec<String> = data.split('\n').map(str::to_owned).collect();
    if let Ok(kept) = tags(list) {
        assert!(kept.len() <= MAX_TAGS);
        for t in &kept {
            assert!(!t.trim().is_empty() && t.chars().count() <= MAX_TAG_LEN);
        }
    }
});
