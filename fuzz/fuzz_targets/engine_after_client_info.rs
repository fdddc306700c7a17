#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rdpserve_core::fuzzing::engine_after_client_info(data));
