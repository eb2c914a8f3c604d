//! TensorBoard's file formats, written without TensorFlow: event files (TFRecord framing with
//! masked CRC-32C around hand-encoded `Event` protobufs: scalars, text, hparams sessions) and
//! the projector's `projector_config.pbtxt`. What a run writes into them is
//! [`crate::run_dir::events`]'s business; this module knows nothing of runs.
//!
//! Written here rather than taken from a crate: the one on crates.io (tensorboard-rs) pulls in
//! protobuf 2 and an image library for what is a few hundred lines of encoding.

mod crc32c;
pub mod event;
pub mod hparams;
pub mod projector;
mod proto;
mod record;
mod writer;

pub use event::Value;
pub use writer::EventWriter;
