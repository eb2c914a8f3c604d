//! TFRecord framing, the container of event files: each record is its length (u64, little
//! endian), the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.
//! A reader can so tell a record cut short by a running writer from a finished one.

use super::crc32c::{crc32c, masked};
use std::io::{self, Write};

/// Appends one record holding `data` to `w`.
pub fn write_record(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    w.write_all(&len)?;
    w.write_all(&masked(crc32c(&len)).to_le_bytes())?;
    w.write_all(data)?;
    w.write_all(&masked(crc32c(data)).to_le_bytes())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The records of a TFRecord stream, every checksum verified.
    pub fn read_records(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let u32_at = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            assert_eq!(
                u32_at(&bytes[8..]),
                masked(crc32c(&bytes[..8])),
                "length CRC"
            );
            let data = &bytes[12..12 + len];
            assert_eq!(u32_at(&bytes[12 + len..]), masked(crc32c(data)), "data CRC");
            out.push(data.to_vec());
            bytes = &bytes[16 + len..];
        }
        out
    }

    #[test]
    fn framing_round_trip() {
        let mut buf = Vec::new();
        write_record(&mut buf, b"hello").unwrap();
        write_record(&mut buf, b"").unwrap();
        assert_eq!(buf.len(), 16 + 5 + 16);
        assert_eq!(&buf[..8], &5u64.to_le_bytes());
        assert_eq!(read_records(&buf), vec![b"hello".to_vec(), vec![]]);
    }
}
