//! End-to-end tests: the real server on `127.0.0.1:0`, driven over HTTP.

mod api;
mod bench;
mod cli;
mod concurrency;
mod conformance;
mod crash;
mod groups;
mod hostile;
mod import_crash;
mod process;
mod slow;
mod support;
