//! Code shared by the tests and examples/conformance.rs.
pub mod probe;
