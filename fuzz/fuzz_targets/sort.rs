//! The `sort` query parameter: `field:order` pairs joined by commas.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelreg_core::list::{CursorKeys, ListQuery, parse_sort};

fuzz_target!(|data: &str| {
    if let Ok(keys) = parse_sort(data) {
        // Accepted sorts name each field once, from the allowed list.
        assert!(!keys.is_empty());
        for (i, k) in keys.iter().enumerate() {
            assert!(keys[..i].iter().all(|o| o.field != k.field));
        }
        // What was accepted can be written back and parses to the same keys.
        let text = keys
            .iter()
            .map(|k| {
                format!(
                    "{}:{}",
                    k.field.as_str(),
                    if k.desc { "desc" } else { "asc" }
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse_sort(&text).unwrap(), keys);
    }
    let _ = ListQuery::parse(
        &[("sort".to_owned(), data.to_owned())],
        &CursorKeys::ephemeral(),
    );
});
