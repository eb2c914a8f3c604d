//! Fine-tuning: the loop, the optimiser and schedule, and evaluation after every epoch.

pub mod config;
pub mod eval;
pub mod fused;
pub mod optim;
pub mod trainable;
pub mod trainer;

pub use config::FinetuneConfig;
pub use trainer::{finetune, RunOutcome};
