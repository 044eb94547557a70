//! JSON request bodies into the domain types, the way the handlers read them: create, update
//! (PUT and PATCH), and a credentials change. The first byte picks the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelreg_api::extract::JsonBody;
use modelreg_core::{
    model::{ModelCreate, ModelUpdate},
    secrets::CredentialsPatch,
    validate,
};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let body = JsonBody::from_bytes(body.to_vec());
    match kind % 3 {
        0 => {
            if let Ok(create) = body.parse::<ModelCreate>()
                && let Ok(input) = validate::create(create)
            {
                assert!(!input.fields.name.trim().is_empty());
                assert!(!input.fields.litellm_model.trim().is_empty());
            }
        }
        1 => {
            if let Ok(update) = body.parse::<ModelUpdate>() {
                let _ = validate::update(update);
            }
        }
        _ => {
            let _ = body.parse::<CredentialsPatch>();
        }
    }
});
