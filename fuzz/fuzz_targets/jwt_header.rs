//! What is read from a JWT before its signature is checked: the header, and the issuer that
//! picks the key source.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelreg_api::auth::unverified_parts;

fuzz_target!(|data: &str| {
    let _ = unverified_parts(data);
    // As a header, payload and signature, so the parts get past the split.
    let mut parts = data.splitn(2, '\n');
    let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let _ = unverified_parts(&format!("{a}.{b}.sig"));
});
