//! The `cursor` query parameter: base64url of a JSON document the server issued, `.`, and its
//! MAC. The first byte picks whether the rest is sent as it is, as base64 without a seal, or
//! sealed with the fuzzer's own key, so the fuzzer reaches the seal's check, the JSON inside
//! and the rules the document is held to.
#![no_main]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use modelreg_core::list::{CursorKeys, ListQuery, Paging};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = CursorKeys::new(vec![zeroize::Zeroizing::new([7u8; 32])]);
    let cursor = match mode % 3 {
        0 => keys.seal(rest),
        1 => URL_SAFE_NO_PAD.encode(rest),
        _ => String::from_utf8_lossy(rest).into_owned(),
    };
    if let Ok(q) = ListQuery::parse(&[("cursor".to_owned(), cursor.clone())], &keys)
        && let Paging::After(after) = &q.paging
    {
        // The store reads one value per sort key: a cursor that parses has exactly that many.
        assert_eq!(after.values.len(), q.sort.len());
    }
    // Beside other parameters, which must then match the cursor's.
    let _ = ListQuery::parse(
        &[
            ("cursor".to_owned(), cursor),
            ("sort".to_owned(), "name:asc".to_owned()),
            ("status".to_owned(), "ACTIVE".to_owned()),
            ("limit".to_owned(), "7".to_owned()),
        ],
        &keys,
    );
});
