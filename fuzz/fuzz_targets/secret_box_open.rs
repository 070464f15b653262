//! `SecretBox::open` and `SecretBox::needs_reseal` on arbitrary sealed bytes and associated
//! data, and on edits of a value really sealed by the box.
//!
//! Invariants: nothing panics; an input shorter than the overhead, or of another version
//! byte, is `Malformed`; an unknown key id is `UnknownKey` with that id; a known one is
//! `Forged` or opens to a plaintext 45 bytes shorter than the input; `needs_reseal` is true
//! exactly for a well-formed value of a key other than the current one. The fuzzer's bytes
//! are also applied as (position, byte) edits to a real sealed value: any edit, or another
//! associated data, must fail to open (the AEAD's authentication), and the unedited value
//! with its own associated data opens to its plaintext. Seal then open round-trips the
//! fuzzer's plaintext, and the box's `Debug` shows no key.
#![no_main]

use arbitrary::Arbitrary;
use keycard::mfa::{KeyId, SealError, SecretBox, SecretKey};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    sealed: &'a [u8],
    aad: &'a [u8],
    plaintext: &'a [u8],
    edits: Vec<(u8, u8)>,
}

fn secret_box() -> SecretBox {
    SecretBox::new(KeyId::new(2), SecretKey::from_bytes([0x42; 32]))
        .with_old_key(KeyId::new(1), SecretKey::from_bytes([0x17; 32]))
}

fn check_shape(
    sb: &SecretBox,
    sealed: &[u8],
    result: &Result<zeroize::Zeroizing<Vec<u8>>, SealError>,
) {
    let well_formed = sealed.len() >= SecretBox::OVERHEAD && sealed[0] == 1;
    let key_id =
        well_formed.then(|| u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]));
    match result {
        Ok(plain) => {
            assert!(well_formed);
            assert_eq!(plain.len(), sealed.len() - SecretBox::OVERHEAD);
        }
        Err(SealError::Malformed) => assert!(!well_formed),
        Err(SealError::UnknownKey(id)) => {
            assert_eq!(Some(id.get()), key_id);
            assert!(!matches!(id.get(), 1 | 2));
        }
        Err(SealError::Forged) => assert!(matches!(key_id, Some(1 | 2))),
        Err(other) => panic!("open cannot fail with {other:?}"),
    }
    assert_eq!(sb.needs_reseal(sealed), well_formed && key_id != Some(2));
}

fuzz_target!(|input: Input<'_>| {
    let sb = secret_box();
    let debug = format!("{sb:?}");
    // The keys' bytes are 0x42 (66) and 0x17 (23): only their ids may show.
    assert!(!debug.contains("66") && !debug.contains("23"), "{debug}");

    // Arbitrary bytes may open: libFuzzer lifts the values this harness seals into its
    // dictionary (from the comparisons below) and replays them, a genuine sealed value each
    // time. So here only the shape of the result is checked; forgery is checked on edits.
    let opened = sb.open(input.sealed, input.aad);
    check_shape(&sb, input.sealed, &opened);

    let real = sb.seal(input.plaintext, input.aad).expect("os rng");
    assert_eq!(real.len(), input.plaintext.len() + SecretBox::OVERHEAD);
    let plain = sb.open(&real, input.aad).expect("its own seal opens");
    assert_eq!(plain.as_slice(), input.plaintext);
    assert!(!sb.needs_reseal(&real));
    let mut other_aad = input.aad.to_vec();
    other_aad.push(0);
    assert!(matches!(sb.open(&real, &other_aad), Err(SealError::Forged)));

    let mut edited = real.clone();
    for &(at, byte) in &input.edits {
        let at = usize::from(at) % edited.len();
        edited[at] = byte;
    }
    let result = sb.open(&edited, input.aad);
    check_shape(&sb, &edited, &result);
    if edited == real {
        assert!(result.is_ok());
    } else {
        assert!(result.is_err(), "an edited sealed value opened");
    }
    let truncated = &real[..real.len() - 1];
    let result = sb.open(truncated, input.aad);
    check_shape(&sb, truncated, &result);
    assert!(result.is_err());
});
