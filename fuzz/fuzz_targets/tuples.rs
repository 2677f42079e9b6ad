//! The relationship text format on arbitrary text: never panics, and every relationship
//! it accepts prints back to text that parses to the same relationship.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pemba_engine::{parse_tuples, Tuple};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tuples) = parse_tuples(text) {
        for tuple in tuples {
            let printed = tuple.to_string();
            assert_eq!(Tuple::parse(&printed).as_ref(), Ok(&tuple), "`{printed}`");
        }
    }
    // Single lines too, as the HTTP cursors and the CLI use them.
    for line in text.lines() {
        if let Ok(tuple) = Tuple::parse(line) {
            assert_eq!(Tuple::parse(&tuple.to_string()).as_ref(), Ok(&tuple));
        }
    }
});
