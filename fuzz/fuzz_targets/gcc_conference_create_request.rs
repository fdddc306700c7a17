#![no_main]

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| rdpserve_core::fuzzing::gcc_conference_create_request(data)
);
