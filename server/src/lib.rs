//! Pemba's HTTP API (to be built).
