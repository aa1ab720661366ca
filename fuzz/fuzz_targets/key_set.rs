#![no_main]
//! JWK and JWK Set parsing on arbitrary input.

#[path = "../../crates/identity-model-core/tests/fuzz_bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::key_set(data));
