//! A fixed-length bit set over pieces, in the wire protocol's layout (high bit first).

/// Why a peer's bitfield was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitfieldError {
    #[error("bitfield is {got} bytes long, expected {expected}")]
    WrongLength { got: usize, expected: usize },
    #[error("bitfield has spare bits set past the last piece")]
    SpareBits,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    pub fn new(len: u32) -> Self {
        Self {
            bytes: vec![0; (len as usize).div_ceil(8)],
            len,
            ones: 0,
        }
    }

    pub fn full(len: u32) -> Self {
        let mut b = Self::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// Reads a wire-format bitfield for `len` pieces, refusing a wrong length or spare bits.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Result<Self, BitfieldError> {
        let expected = (len as usize).div_ceil(8);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                got: bytes.len(),
                expected,
            });
        }
        let spare = expected * 8 - len as usize;
        if spare > 0
            && bytes
                .last()
                .is_some_and(|last| last & ((1u8 << spare) - 1) != 0)
        {
            return Err(BitfieldError::SpareBits);
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Self {
            bytes: bytes.to_vec(),
            len,
            ones,
        })
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: u32) -> bool {
        self.bytes
            .get((i / 8) as usize)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }

    /// Sets bit `i`; returns whether it was clear before. Out-of-range indices are ignored.
    pub fn set(&mut self, i: u32) -> bool {
        match self.bytes.get_mut((i / 8) as usize) {
            Some(b) if i < self.len && *b & (0x80 >> (i % 8)) == 0 => {
                *b |= 0x80 >> (i % 8);
                self.ones += 1;
                true
            }
            _ => false,
        }
    }

    pub fn clear(&mut self, i: u32) {
        if let Some(b) = self.bytes.get_mut((i / 8) as usize)
            && *b & (0x80 >> (i % 8)) != 0
        {
            *b &= !(0x80 >> (i % 8));
            self.ones -= 1;
        }
    }

    pub fn count_ones(&self) -> u32 {
        self.ones
    }

    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(!b.set(0));
        assert!(b.set(9));
        assert!(!b.set(10));
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count_ones(), 2);
        b.clear(0);
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![9]);
        assert!(Bitfield::full(10).is_full());
    }

    #[test]
    fn rejects_wrong_length_and_spare_bits() {
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                got: 1,
                expected: 2
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBits)
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xc0], 10)
                .unwrap()
                .count_ones(),
            10
        );
    }
}
