//! The model catalog: prices, token limits and capabilities of known models, from a dated
//! snapshot bundled in the binary (docs/catalog.md).

mod capability;

pub use capability::Capability;
