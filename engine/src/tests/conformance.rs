//! Moved to `engine/tests/conformance.rs`, a harness-less test target that reports each
//! SpiceDB validation file as its own case (ignored, with the reason, when
//! `PEMBA_CONFORMANCE_DIR` is unset). This file stays empty until `mod conformance;` is
//! dropped from `engine/src/tests.rs`.
