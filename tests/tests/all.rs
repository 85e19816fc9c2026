//! Integration tests of the test kit, one binary to keep link time down.

mod suite;
