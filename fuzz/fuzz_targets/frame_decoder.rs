//! Arbitrary byte chunks into the frame decoder of every frame type:
//! the buffer stays within its limit and any split decodes like the whole.
#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;
use natter_fuzz::{decoder_input, Unstructured};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok((chunks, limit)) = decoder_input(&mut u) {
        invariants::check_decoder(&chunks, limit);
    }
});
