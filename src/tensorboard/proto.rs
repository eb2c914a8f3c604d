//! Protocol-buffer wire encoding, as much as TensorBoard's messages need: a message is built
//! field by field, in field order, and nested as bytes.

/// An encoded message under construction.
#[derive(Debug, Clone, Default)]
pub struct Message {
    bytes: Vec<u8>,
}

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LENGTH_DELIMITED: u32 = 2;
const FIXED32: u32 = 5;

impl Message {
    pub fn new() -> Self {
        Self::default()
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.bytes.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.bytes.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from(field << 3 | wire_type));
    }

    /// A `double` field.
    pub fn double(mut self, field: u32, v: f64) -> Self {
        self.key(field, FIXED64);
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `float` field.
    pub fn float(mut self, field: u32, v: f32) -> Self {
        self.key(field, FIXED32);
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// An `int64` field (a negative value takes ten bytes, as protobuf says).
    pub fn int64(mut self, field: u32, v: i64) -> Self {
        self.key(field, VARINT);
        self.varint(v as u64);
        self
    }

    /// An enum, `uint32`/`uint64` or non-negative `int32` field.
    pub fn uint(mut self, field: u32, v: u64) -> Self {
        self.key(field, VARINT);
        self.varint(v);
        self
    }

    pub fn bool(self, field: u32, v: bool) -> Self {
        self.uint(field, u64::from(v))
    }

    /// A `bytes` field.
    pub fn bytes(mut self, field: u32, v: &[u8]) -> Self {
        self.key(field, LENGTH_DELIMITED);
        self.varint(v.len() as u64);
        self.bytes.extend_from_slice(v);
        self
    }

    /// A `string` field.
    pub fn string(self, field: u32, v: &str) -> Self {
        self.bytes(field, v.as_bytes())
    }

    /// A nested message (also a map entry: key 1, value 2).
    pub fn message(self, field: u32, m: Message) -> Self {
        self.bytes(field, &m.bytes)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_examples() {
        // The protobuf encoding guide's examples: field 1 = 150; field 2 = "testing".
        assert_eq!(Message::new().uint(1, 150).into_bytes(), [0x08, 0x96, 0x01]);
        assert_eq!(
            Message::new().string(2, "testing").into_bytes(),
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        assert_eq!(Message::new().int64(2, -1).into_bytes().len(), 11);
        assert_eq!(
            Message::new().float(2, 1.0).into_bytes(),
            [0x15, 0x00, 0x00, 0x80, 0x3F]
        );
    }
}
