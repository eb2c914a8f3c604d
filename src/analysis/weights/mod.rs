//! Weight statistics of a checkpoint and the change between checkpoints, per layer and module.
//!
//! Every tensor is filed under one layer (0 = embeddings, i = encoder layer i, none = the head)
//! and one module (q, k, v, o, ffn_in, ffn_out, ln_attn, ln_ffn, embeddings, pooler,
//! classifier), and, for the histograms, under one group: the weight matrices of each module
//! type, the linear layers' biases, LayerNorm gamma, LayerNorm beta, the embedding tables and the
//! head. Every parameter lands in exactly one group, so the histograms of a checkpoint count all
//! of its parameters.

mod checkpoint;
mod comparison;
mod histogram;
mod report;
mod stats;

pub use checkpoint::Weights;
pub use comparison::{by_layer, by_module, compare, ChangeSums, Comparison, TensorChange};
pub use histogram::{histograms, GroupHistogram};
// Where a tensor sits is the model's business (training files tensors too); re-exported here
// so that `analysis::weights::{place, Group, Place}` keep working.
pub use crate::model::place::{place, Group, Place, ALL_GROUPS};
pub use report::{write_report, ReportRequest, HEATMAP_MODULES, MAX_BINS};
pub use stats::{stats_of, TensorStats, OUTLIER_STD};
