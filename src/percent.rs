//! Percent-encoding (RFC 3986), the one implementation for tracker URLs, the tracker's
//! requests, magnet links and `file://` URIs.

/// Escapes every byte but the unreserved characters (`A-Z a-z 0-9 - . _ ~`).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; a malformed escape is kept as it is (for peers' requests and paths,
/// which are read as well as they can be).
pub fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match escape_at(bytes, i) {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Decodes `%XX` escapes, and `+` as a space when `plus_is_space`; a malformed escape is an
/// error naming its byte offset.
pub fn decode_strict(text: &str, plus_is_space: bool) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                out.push(
                    escape_at(bytes, i).ok_or_else(|| format!("a broken %-escape at byte {i}"))?,
                );
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The byte of a well-formed `%XX` escape starting at `i`.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved_and_decodes_back() {
        let text = "a b/c?d=e&f~g_h.i-j+k%";
        let encoded = encode(text.as_bytes());
        assert_eq!(encoded, "a%20b%2Fc%3Fd%3De%26f~g_h.i-j%2Bk%25");
        assert_eq!(decode(&encoded), text.as_bytes());
        assert_eq!(decode_strict(&encoded, false).unwrap(), text.as_bytes());
    }

    #[test]
    fn malformed_escapes_are_kept_or_refused() {
        assert_eq!(decode("a%20b%zz%4"), b"a b%zz%4");
        assert_eq!(decode("100%"), b"100%");
        assert_eq!(
            decode_strict("ab%4", false),
            Err("a broken %-escape at byte 2".into())
        );
        assert_eq!(decode_strict("a+b", true).unwrap(), b"a b");
        assert_eq!(decode_strict("a+b", false).unwrap(), b"a+b");
    }
}
