//! The analysis half: reads run directories, embedding folders and checkpoints, never the
//! training loop.

pub mod curves;
pub mod drift;
pub mod geometry;
pub mod tsne;
pub mod weights;
