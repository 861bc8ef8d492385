//! Bencoding: a strict decoder into a small [`Value`] type, and an encoder.
//!
//! Typed documents (metainfo, tracker responses) go through `serde_bencode`, but only after this
//! decoder has accepted the bytes: it rejects what serde_bencode lets through (leading zeros,
//! `i-0e`, duplicate keys, which could make two readers see two documents, and trailing bytes;
//! unsorted keys are tolerated, as real .torrent files have them) and reports the byte offset
//! of every error. Lengths are checked against the input before anything is allocated, and
//! nesting is capped, so hostile input can neither exhaust memory nor the stack.

use std::collections::BTreeMap;
use std::ops::Range;

/// How deeply lists and dictionaries may nest before the input is rejected.
pub const MAX_DEPTH: usize = 64;

/// A decoded bencode value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Why some bytes are not valid bencode, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("bencode: unexpected end of data at byte {0}")]
    Truncated(usize),
    #[error("bencode: unexpected byte {byte:#04x} at byte {at}")]
    UnexpectedByte { byte: u8, at: usize },
    #[error("bencode: invalid integer at byte {0}")]
    BadInteger(usize),
    #[error("bencode: string length at byte {at} runs {len} bytes past the end of the data")]
    LengthPastEnd { at: usize, len: usize },
    #[error("bencode: nesting deeper than {MAX_DEPTH} levels at byte {0}")]
    TooDeep(usize),
    #[error("bencode: dictionary key at byte {0} is not a string")]
    KeyNotString(usize),
    #[error("bencode: dictionary key at byte {0} appears twice")]
    DuplicateKey(usize),
    #[error("bencode: {0} trailing bytes after the value")]
    TrailingBytes(usize),
}

impl Value {
    /// A dictionary from string keys.
    pub fn dict<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value under `key` when this is a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict().and_then(|d| d.get(key.as_bytes()))
    }

    /// Bencodes this value (dictionary keys come out sorted, as the format requires).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Decodes exactly one value that spans the whole input.
pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder {
        input,
        pos: 0,
        spans: None,
    };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::TrailingBytes(input.len() - d.pos));
    }
    Ok(v)
}

/// Decodes exactly one value that spans the whole input, and also returns the byte range that
/// the value under the top-level dictionary key `key` occupies (to hash the exact `info` bytes).
pub fn decode_with_span(
    input: &[u8],
    key: &[u8],
) -> Result<(Value, Option<Range<usize>>), DecodeError> {
    let mut d = Decoder {
        input,
        pos: 0,
        spans: Some((key, None)),
    };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::TrailingBytes(input.len() - d.pos));
    }
    Ok((v, d.spans.and_then(|(_, s)| s)))
}

/// Decodes one value at the start of the input and returns it with the number of bytes it used
/// (for values followed by other data, such as a message trailer).
pub fn decode_prefix(input: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut d = Decoder {
        input,
        pos: 0,
        spans: None,
    };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    /// The top-level key whose value span is wanted, and that span once found.
    spans: Option<(&'a [u8], Option<Range<usize>>)>,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep(self.pos));
        }
        match self.peek()? {
            b'i' => self.int().map(Value::Int),
            b'0'..=b'9' => self.bytes().map(|b| Value::Bytes(b.to_vec())),
            b'l' => {
                self.pos += 1;
                let mut list = Vec::new();
                while self.peek()? != b'e' {
                    list.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(list))
            }
            b'd' => {
                self.pos += 1;
                let mut dict = BTreeMap::new();
                while self.peek()? != b'e' {
                    let key_at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::KeyNotString(key_at));
                    }
                    let key = self.bytes()?;
                    let value_start = self.pos;
                    let value = self.value(depth + 1)?;
                    if depth == 0
                        && let Some((wanted, span)) = &mut self.spans
                        && *wanted == key
                    {
                        *span = Some(value_start..self.pos);
                    }
                    if dict.insert(key.to_vec(), value).is_some() {
                        return Err(DecodeError::DuplicateKey(key_at));
                    }
                }
                self.pos += 1;
                Ok(Value::Dict(dict))
            }
            byte => Err(DecodeError::UnexpectedByte { byte, at: self.pos }),
        }
    }

    fn int(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        self.pos += 1; // 'i'
        let digits_start = self.pos;
        let end = self.input[digits_start..]
            .iter()
            .position(|&b| b == b'e')
            .map(|p| digits_start + p)
            .ok_or(DecodeError::Truncated(self.input.len()))?;
        let text = &self.input[digits_start..end];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let leading_zero = digits.len() > 1 && digits[0] == b'0';
        let negative_zero = text.len() != digits.len() && digits == b"0";
        if digits.is_empty()
            || !digits.iter().all(u8::is_ascii_digit)
            || leading_zero
            || negative_zero
        {
            return Err(DecodeError::BadInteger(start));
        }
        let value = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(DecodeError::BadInteger(start))?;
        self.pos = end + 1;
        Ok(value)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let input: &'a [u8] = self.input;
        let start = self.pos;
        let colon = self.input[start..]
            .iter()
            .position(|&b| b == b':')
            .map(|p| start + p)
            .ok_or(DecodeError::Truncated(self.input.len()))?;
        let digits = &self.input[start..colon];
        if digits.is_empty()
            || !digits.iter().all(u8::is_ascii_digit)
            || (digits.len() > 1 && digits[0] == b'0')
            || digits.len() > 19
        {
            return Err(DecodeError::BadInteger(start));
        }
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(DecodeError::BadInteger(start))?;
        let data_start = colon + 1;
        let available = self.input.len() - data_start;
        if len > available {
            return Err(DecodeError::LengthPastEnd {
                at: start,
                len: len - available,
            });
        }
        self.pos = data_start + len;
        Ok(&input[data_start..self.pos])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_all_kinds() {
        let v = decode(b"d3:bari-42e3:fooli1e4:spamee").unwrap();
        assert_eq!(v.get("bar").and_then(Value::as_int), Some(-42));
        let foo = v.get("foo").and_then(Value::as_list).unwrap();
        assert_eq!(foo, &[Value::Int(1), Value::Bytes(b"spam".to_vec())]);
    }

    #[test]
    fn round_trips() {
        let input = b"d1:ad1:bi0ee1:cl0:i-7eee";
        assert_eq!(decode(input).unwrap().encode(), input.to_vec());
    }

    /// Found by the `bencode` fuzz target: keys out of order are read (real torrents have
    /// them), and re-encoding sorts them; a key given twice is refused.
    #[test]
    fn unsorted_keys_are_read_and_duplicates_refused() {
        let v = decode(b"d8:announcei2e4:^nfoi1ee").unwrap();
        assert_eq!(v.encode(), b"d4:^nfoi1e8:announcei2ee");
        assert_eq!(decode(&v.encode()), Ok(v));
        assert_eq!(decode(b"d1:ai1e1:ai2ee"), Err(DecodeError::DuplicateKey(7)));
    }

    #[test]
    fn rejects_malformed_input_with_position() {
        assert_eq!(decode(b"i03e"), Err(DecodeError::BadInteger(0)));
        assert_eq!(decode(b"i-0e"), Err(DecodeError::BadInteger(0)));
        assert_eq!(decode(b"ie"), Err(DecodeError::BadInteger(0)));
        assert_eq!(decode(b"i-e"), Err(DecodeError::BadInteger(0)));
        assert_eq!(decode(b"i12"), Err(DecodeError::Truncated(3)));
        assert_eq!(
            decode(b"i99999999999999999999e"),
            Err(DecodeError::BadInteger(0))
        );
        assert_eq!(decode(b"l4:spam"), Err(DecodeError::Truncated(7)));
        assert_eq!(
            decode(b"5:abc"),
            Err(DecodeError::LengthPastEnd { at: 0, len: 2 })
        );
        assert_eq!(decode(b"05:abcde"), Err(DecodeError::BadInteger(0)));
        assert_eq!(decode(b"i1ei2e"), Err(DecodeError::TrailingBytes(3)));
        assert_eq!(decode(b"di1ei2ee"), Err(DecodeError::KeyNotString(1)));
        assert_eq!(
            decode(b"x"),
            Err(DecodeError::UnexpectedByte { byte: b'x', at: 0 })
        );
        assert_eq!(decode(b""), Err(DecodeError::Truncated(0)));
    }

    #[test]
    fn huge_length_does_not_allocate() {
        assert!(matches!(
            decode(b"9999999999999999999:x"),
            Err(DecodeError::LengthPastEnd { .. })
        ));
        assert!(matches!(
            decode(b"99999999999999999999:x"),
            Err(DecodeError::BadInteger(0))
        ));
    }

    #[test]
    fn rejects_deep_nesting() {
        let deep = "l".repeat(100_000);
        assert!(matches!(
            decode(deep.as_bytes()),
            Err(DecodeError::TooDeep(_))
        ));
    }

    #[test]
    fn finds_exact_span_of_top_level_key() {
        let input = b"d4:infod1:xi1e1:zi2ee4:infx0:e";
        let (_, span) = decode_with_span(input, b"info").unwrap();
        assert_eq!(&input[span.unwrap()], b"d1:xi1e1:zi2ee");
    }

    #[test]
    fn prefix_decoding_reports_consumed_length() {
        let (v, used) = decode_prefix(b"d1:ai1eeREST").unwrap();
        assert_eq!(used, 8);
        assert_eq!(v.get("a").and_then(Value::as_int), Some(1));
    }
}
