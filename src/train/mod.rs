//! Fine-tuning: the options and their resolution, preparation, the loop, the optimiser and
//! schedule, and evaluation after every epoch.

pub mod config;
mod early_stopping;
pub mod eval;
pub mod fused;
mod limits;
mod loss;
pub mod optim;
pub mod options;
mod prepare;
mod resume;
mod task_cache;
pub mod trainable;
pub mod trainer;

pub use config::FinetuneConfig;
pub use options::FinetuneOptions;
pub use resume::resume_config;
pub use trainer::{finetune, resume, RunOutcome};
