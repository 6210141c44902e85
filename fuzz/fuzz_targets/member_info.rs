//! libFuzzer entry for `tandem_fuzz::member_info` (the body lives there, so
//! the corpus replay test runs the same code on stable).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::member_info(data));
