//! A xenstored for tests (placeholder).
