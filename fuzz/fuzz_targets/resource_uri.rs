//! A model's key in a path: a resource_uri or a model id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelreg_core::resource_uri::{ModelKey, ResourceUri};

fuzz_target!(|data: &str| {
    if let Ok(uri) = ResourceUri::parse(data) {
        assert_eq!(uri.to_string(), data);
        assert!(
            data.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }
    if let Ok(key) = ModelKey::parse(data) {
        // A key parses back from how it is written.
        assert_eq!(ModelKey::parse(&key.to_string()).unwrap().to_string(), key.to_string());
    }
});
