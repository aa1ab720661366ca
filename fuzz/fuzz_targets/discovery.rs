#![no_main]
//! Discovery documents, URL policy and media types on arbitrary input.

#[path = "../../crates/identity-model-core/tests/fuzz_bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::discovery(data));
