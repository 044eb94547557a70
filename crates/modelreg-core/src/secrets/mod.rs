//! Credentials: what a client sends and how its values are checked (`credentials`), and how
//! they are kept at rest, envelope-encrypted under the key-encryption keys (`envelope`).

mod credentials;
mod envelope;

pub use credentials::{CredentialValue, Credentials, CredentialsPatch, MAX_CREDENTIALS_BYTES};
pub use envelope::{Binding, Kek, Keyring, OpenError, SealedCredentials, fill_random};
