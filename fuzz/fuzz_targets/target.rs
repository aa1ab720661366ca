#![no_main]
//! Request targets and the three path readings (route matching, DPoP htu) on arbitrary input.

#[path = "../../crates/identity-model-core/tests/fuzz_bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::target(data));
