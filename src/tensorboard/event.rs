//! TensorBoard's `Event` message (tensorboard/compat/proto/event.proto) and the summary values
//! heal puts in it: float scalars, text, and plugin tensors (the hparams plugin's).

use super::proto::Message;

/// `Event.file_version` of the first record: TensorBoard reads the file only when it is there.
pub const FILE_VERSION: &str = "brain.Event:2";

/// TensorFlow's `DataType` numbers used here.
const DT_FLOAT: u64 = 1;
const DT_STRING: u64 = 7;

/// Seconds since the Unix epoch, as `Event.wall_time` holds them.
pub fn wall_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One value of a `Summary`.
#[derive(Debug, Clone)]
pub struct Value {
    tag: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `simple_value`: shown under Scalars by every TensorBoard version.
    Scalar(f32),
    /// A tensor with the plugin that reads it (`metadata.plugin_data`).
    Tensor {
        plugin: &'static str,
        content: Vec<u8>,
        tensor: Message,
    },
}

impl Value {
    pub fn scalar(tag: impl Into<String>, value: f64) -> Self {
        Value {
            tag: tag.into(),
            kind: Kind::Scalar(value as f32),
        }
    }

    /// Markdown for the Text dashboard: a scalar string tensor tagged for the text plugin.
    pub fn text(tag: impl Into<String>, markdown: &str) -> Self {
        let tensor = Message::new()
            .uint(1, DT_STRING)
            .message(2, Message::new())
            .bytes(8, markdown.as_bytes());
        Value {
            tag: tag.into(),
            kind: Kind::Tensor {
                plugin: "text",
                content: vec![],
                tensor,
            },
        }
    }

    /// Plugin data alone: `content` in the metadata, an empty float vector as the tensor (as
    /// the hparams plugin's own summaries do).
    pub fn plugin_data(tag: impl Into<String>, plugin: &'static str, content: Vec<u8>) -> Self {
        let tensor = Message::new()
            .uint(1, DT_FLOAT)
            .message(2, Message::new().message(2, Message::new()));
        Value {
            tag: tag.into(),
            kind: Kind::Tensor {
                plugin,
                content,
                tensor,
            },
        }
    }

    /// `Summary.Value`: tag 1, simple_value 2, tensor 8, metadata 9.
    fn encode(&self) -> Message {
        let m = Message::new().string(1, &self.tag);
        match &self.kind {
            Kind::Scalar(v) => m.float(2, *v),
            Kind::Tensor {
                plugin,
                content,
                tensor,
            } => {
                let mut plugin_data = Message::new().string(1, plugin);
                if !content.is_empty() {
                    plugin_data = plugin_data.bytes(2, content);
                }
                m.message(8, tensor.clone())
                    .message(9, Message::new().message(1, plugin_data))
            }
        }
    }
}

/// An `Event` holding the file version (wall_time 1, step 2, file_version 3).
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    Message::new()
        .double(1, wall_time)
        .string(3, FILE_VERSION)
        .into_bytes()
}

/// An `Event` holding a `Summary` (field 5) of `values` (`Summary.value`, field 1).
pub fn summary_event(wall_time: f64, step: i64, values: &[Value]) -> Vec<u8> {
    let summary = values
        .iter()
        .fold(Message::new(), |s, v| s.message(1, v.encode()));
    Message::new()
        .double(1, wall_time)
        .int64(2, step)
        .message(5, summary)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The bytes of the same events serialised by TensorBoard's own protobuf classes
    // (tensorboard.compat.proto.event_pb2, text plugin's summary_v2.text_pb).
    #[test]
    fn events_equal_tensorboards_serialisation() {
        assert_eq!(
            file_version_event(1.5),
            [
                9, 0, 0, 0, 0, 0, 0, 248, 63, 26, 13, 98, 114, 97, 105, 110, 46, 69, 118, 101, 110,
                116, 58, 50
            ]
        );
        assert_eq!(
            summary_event(1.5, 3, &[Value::scalar("train/loss", 0.25)]),
            [
                9, 0, 0, 0, 0, 0, 0, 248, 63, 16, 3, 42, 19, 10, 17, 10, 10, 116, 114, 97, 105,
                110, 47, 108, 111, 115, 115, 21, 0, 0, 128, 62
            ]
        );
        assert_eq!(
            summary_event(1.5, 3, &[Value::text("run/config", "hi")]),
            [
                9, 0, 0, 0, 0, 0, 0, 248, 63, 16, 3, 42, 34, 10, 32, 10, 10, 114, 117, 110, 47, 99,
                111, 110, 102, 105, 103, 66, 8, 8, 7, 18, 0, 66, 2, 104, 105, 74, 8, 10, 6, 10, 4,
                116, 101, 120, 116
            ]
        );
    }
}
