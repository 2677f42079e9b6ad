//! Engine tests: conformance files, reference model, persistence, concurrency, operations.

mod operations;
mod reference_model;
mod transactions;
