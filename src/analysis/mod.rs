//! The analysis half: reads run directories, never the training loop.

pub mod curves;
pub mod drift;
pub mod embed;
pub mod geometry;
pub mod npy;
pub mod tsne;
pub mod weights;
