//! RFC 4648 base32 without padding, for TOTP secrets and recovery codes. Written out here
//! (a few lines) rather than taken from a crate so that encoding a secret writes into a
//! buffer the caller sized and zeroizes, with no reallocation leaving copies behind.

/// The RFC 4648 alphabet, upper case (what authenticator apps show and accept).
pub(super) const UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// The same alphabet in lower case (recovery codes).
pub(super) const LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// How many characters `len` bytes encode to, without padding.
pub(super) const fn encoded_len(len: usize) -> usize {
    (len * 8).div_ceil(5)
}

/// Appends the base32 of `bytes` in `alphabet` to `out` (reserve [`encoded_len`] first to
/// keep `out` from reallocating).
pub(super) fn encode_into(bytes: &[u8], alphabet: &[u8; 32], out: &mut String) {
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(alphabet[usize::from((buffer >> bits) & 31)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            alphabet[usize::from((buffer << (5 - bits)) & 31)],
        ));
    }
}

/// The 5-bit value of one base32 character, either case; `None` outside the alphabet.
fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a'),
        b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    }
}

/// Decodes exactly `N` bytes from `chars`, which must be exactly the `8 * N / 5` base32
/// characters (either case) that encode them with no bits left over: `N` a multiple of 5.
pub(super) fn decode_exact<const N: usize>(chars: &[u8]) -> Option<[u8; N]> {
    if N % 5 != 0 || chars.len() != encoded_len(N) {
        return None;
    }
    let mut out = [0u8; N];
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    let mut at = 0;
    for &c in chars {
        buffer = (buffer << 5) | u16::from(value(c)?);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(at)? = (buffer >> bits) as u8;
            at += 1;
            buffer &= (1 << bits) - 1;
        }
    }
    (at == N).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(bytes: &[u8]) -> String {
        let mut s = String::new();
        encode_into(bytes, UPPER, &mut s);
        s
    }

    #[test]
    fn rfc_4648_vectors_without_padding() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(encoded_len(plain.len()), encoded.len());
        }
    }

    #[test]
    fn decodes_what_it_encodes_in_either_case() {
        let bytes = *b"0123456789";
        let upper = encode(&bytes);
        assert_eq!(decode_exact::<10>(upper.as_bytes()), Some(bytes));
        let lower = upper.to_ascii_lowercase();
        assert_eq!(decode_exact::<10>(lower.as_bytes()), Some(bytes));
        assert_eq!(decode_exact::<10>(&upper.as_bytes()[1..]), None);
        assert_eq!(decode_exact::<10>(upper.replace('G', "1").as_bytes()), None);
        assert_eq!(decode_exact::<5>(b"MZXW6YTB"), Some(*b"fooba"));
        assert_eq!(decode_exact::<4>(b"MZXW6YQ"), None, "leftover bits");
    }
}
