//! CRC-32C (Castagnoli), the checksum of TFRecord framing, and TensorFlow's masking of it.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// One table entry per byte value, computed at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TensorFlow stores a rotated and offset CRC, so that a CRC of data that itself holds CRCs is
/// not degenerate (tensorflow/core/lib/hash/crc32c.h `Mask`).
pub fn masked(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xA282_EAD8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720, B.4: 32 bytes of zeros, of 0xFF, and 0..31 ascending.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
    }

    #[test]
    fn masking_as_tensorflow() {
        // ((crc >> 15) | (crc << 17)) + 0xa282ead8, wrapping.
        assert_eq!(masked(0), 0xA282_EAD8);
        assert_eq!(masked(1), 0x0002_0000 + 0xA282_EAD8);
        assert_eq!(masked(0x8000), 0x0000_0001 + 0xA282_EAD8);
        // TensorBoard's masked_crc32c(b"123456789").
        assert_eq!(masked(crc32c(b"123456789")), 0xC78A_B0E5);
        // The masked CRC of a record length, 24 as a little-endian u64.
        assert_eq!(masked(crc32c(&24u64.to_le_bytes())), 0x224B_7FA3);
    }
}
