//! # tollgate-workspace-tests
//!
//! Holds the tests that look at the workspace as a whole (in `tests/`): the layering rules read
//! from `cargo metadata`, the dependency tree of the SDK facade, the `//!` header of every crate,
//! and the freshness of generated code. It has no library code and nothing depends on it.
