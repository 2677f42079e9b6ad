//! The schema compiler on arbitrary text: never panics, and whatever compiles prints to
//! text that compiles again to the same canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(compiled) = pemba_schema::compile(text) {
        let printed = pemba_schema::print(&compiled);
        let again = match pemba_schema::compile(&printed) {
            Ok(again) => again,
            Err(errors) => panic!("printed schema does not compile: {errors}\n{printed}"),
        };
        assert_eq!(
            pemba_schema::print(&again),
            printed,
            "printing is not stable"
        );
    }
});
