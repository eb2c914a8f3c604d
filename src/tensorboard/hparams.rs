//! The hparams plugin's session records (tensorboard/plugins/hparams/plugin_data.proto): a
//! run's hyper-parameters when it starts and its status when it ends, so that the HParams
//! dashboard lines up the runs of a sweep against their scores.

use super::event::Value;
use super::proto::Message;

const PLUGIN: &str = "hparams";
const SESSION_START_TAG: &str = "_hparams_/session_start_info";
const SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// One hyper-parameter's value (google.protobuf.Value: number 2, string 3, bool 4).
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// How a run ended (tensorboard.hparams.Status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Success = 1,
    Failure = 2,
}

/// `HParamsPluginData.session_start_info` (field 3): the hyper-parameters (a map, field 1)
/// and the start time (field 5).
pub fn session_start(hparams: &[(String, HParam)], start_time_secs: f64) -> Value {
    let info = hparams
        .iter()
        .fold(Message::new(), |m, (name, value)| {
            let value = match value {
                HParam::Number(v) => Message::new().double(2, *v),
                HParam::Text(s) => Message::new().string(3, s),
                HParam::Bool(b) => Message::new().bool(4, *b),
            };
            m.message(1, Message::new().string(1, name).message(2, value))
        })
        .double(5, start_time_secs);
    Value::plugin_data(
        SESSION_START_TAG,
        PLUGIN,
        Message::new().message(3, info).into_bytes(),
    )
}

/// `HParamsPluginData.session_end_info` (field 4): status 1, end time 2.
pub fn session_end(status: SessionStatus, end_time_secs: f64) -> Value {
    let info = Message::new()
        .uint(1, status as u64)
        .double(2, end_time_secs);
    Value::plugin_data(
        SESSION_END_TAG,
        PLUGIN,
        Message::new().message(4, info).into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensorboard::event::summary_event;

    /// The plugin content inside an encoded summary event: the bytes after the "hparams"
    /// plugin name's field.
    fn content(value: Value) -> Vec<u8> {
        let event = summary_event(0.0, 0, &[value]);
        let name = b"\x0a\x07hparams\x12";
        let at = event
            .windows(name.len())
            .position(|w| w == name)
            .expect("plugin name")
            + name.len();
        let len = event[at] as usize;
        event[at + 1..at + 1 + len].to_vec()
    }

    // The same messages serialised by TensorBoard's plugin_data_pb2.
    #[test]
    fn plugin_data_equals_tensorboards_serialisation() {
        assert_eq!(
            content(session_start(&[("lr".into(), HParam::Number(0.5))], 2.0)),
            [
                26, 26, 10, 15, 10, 2, 108, 114, 18, 9, 17, 0, 0, 0, 0, 0, 0, 224, 63, 41, 0, 0, 0,
                0, 0, 0, 0, 64
            ]
        );
        assert_eq!(
            content(session_start(
                &[("model".into(), HParam::Text("m".into()))],
                2.0
            )),
            [
                26, 23, 10, 12, 10, 5, 109, 111, 100, 101, 108, 18, 3, 26, 1, 109, 41, 0, 0, 0, 0,
                0, 0, 0, 64
            ]
        );
        assert_eq!(
            content(session_start(&[("fused".into(), HParam::Bool(true))], 2.0)),
            [
                26, 22, 10, 11, 10, 5, 102, 117, 115, 101, 100, 18, 2, 32, 1, 41, 0, 0, 0, 0, 0, 0,
                0, 64
            ]
        );
        assert_eq!(
            content(session_end(SessionStatus::Success, 3.0)),
            [34, 11, 8, 1, 17, 0, 0, 0, 0, 0, 0, 8, 64]
        );
    }
}
