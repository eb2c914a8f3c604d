//! heal: break a pretrained transformer encoder on purpose, fine-tune it, and measure how much
//! fine-tuning repairs.
//!
//! The training half (model, corrupt, data, train) writes run directories ([`run_dir`]); the
//! analysis half ([`analysis`], [`sweep::report`]) reads them, and never the training loop.
//! The command line lives in the binary (src/cli/) and only translates flags into the typed
//! configs defined here. Nothing here calls Python. ARCHITECTURE.md is the map.

pub mod analysis;
pub mod artefacts;
pub mod bom;
pub mod corrupt;
pub mod data;
pub mod defaults;
pub mod demo;
pub mod device;
pub mod error;
pub mod extract;
pub mod fsio;
pub mod heap;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod npy;
pub mod progress;
pub mod run_dir;
pub mod stats;
pub mod string_serde;
pub mod sweep;
pub mod team;
pub mod tensorboard;
pub mod threads;
pub mod torch_error;
pub mod train;
pub mod versions;
