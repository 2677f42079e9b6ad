//! SpiceDB validation files on arbitrary text: loading never panics, and a file that loads
//! runs (schema compiled, relationships written to an in-memory engine, assertions
//! evaluated) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = pemba_engine::validation_file::parse(text) {
        let _ = pemba_engine::validation_file::run(&file, text);
    }
});
