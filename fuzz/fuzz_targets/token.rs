#![no_main]
//! Token parsing and validation on arbitrary input.

#[path = "../../crates/identity-model-core/tests/fuzz_bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::token(data));
