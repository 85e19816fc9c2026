//! Integration tests, one binary to keep link time down.

mod suite;
