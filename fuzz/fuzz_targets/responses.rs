#![no_main]
//! Token, introspection, device, PAR, userinfo and error responses, and authorization
//! callbacks, on arbitrary input.

#[path = "../../crates/identity-model-core/tests/fuzz_bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::responses(data));
