//! heal: break a pretrained transformer encoder on purpose, fine-tune it, and measure how much
//! fine-tuning repairs.
//!
//! The training half (model, data, train) writes run directories ([`run_dir`]); the analysis
//! half reads them. Nothing here calls Python.

pub mod analysis;
pub mod cli;
pub mod corrupt;
pub mod data;
pub mod defaults;
pub mod device;
pub mod error;
pub mod fsio;
pub mod metrics;
pub mod model;
pub mod run_dir;
pub mod summary;
pub mod sweep;
pub mod train;
pub mod versions;
