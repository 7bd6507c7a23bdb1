//! Turns fuzzer bytes into the operations of the invariant harness.
//!
//! The harness itself, and every invariant it asserts, lives in
//! `core/tests/invariants.rs`, which the proptest suite runs in
//! `cargo test`; the targets include that file with `#[path]`, so the fuzz
//! targets and the property tests can never drift apart. This library
//! only decodes an `Unstructured` byte string into the harness's
//! operation types, which the targets pass in as plain values.

pub use libfuzzer_sys::arbitrary::{Result, Unstructured};

/// The longest operation list built from one input: keeps each run fast.
pub const MAX_OPS: usize = 200;

/// Byte chunks and a line limit for the decoder target.
pub fn decoder_input(u: &mut Unstructured<'_>) -> Result<(Vec<Vec<u8>>, usize)> {
    let limit = [16, 64, 256, 4096][u.int_in_range(0..=3usize)?];
    let mut chunks = Vec::new();
    while !u.is_empty() && chunks.len() < MAX_OPS {
        let len = u.int_in_range(0..=400usize)?.min(u.len());
        chunks.push(u.bytes(len)?.to_vec());
    }
    Ok((chunks, limit))
}

/// Picks one of `pool`, or (rarely) anything at all.
pub fn name_from(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<String> {
    if u.ratio(1, 8)? {
        let len = u.int_in_range(0..=40usize)?;
        let bytes = u.bytes(len.min(u.len()))?;
        return Ok(String::from_utf8_lossy(bytes).into_owned());
    }
    Ok(u.choose(pool)?.to_string())
}

/// Bytes of at most `max` length, taken from the input.
pub fn some_bytes(u: &mut Unstructured<'_>, max: usize) -> Result<Vec<u8>> {
    let len = u.int_in_range(0..=max)?.min(u.len());
    Ok(u.bytes(len)?.to_vec())
}
