//! The only place the commands write to the terminal: results and progress on stdout,
//! failures on stderr. The daemon never calls these (its stdout is the protocol).
//!
//! Nothing printed here may contain a token, an authorization code, a PKCE verifier, a
//! `state` value or a client secret; authorization URLs carry only the public `state`
//! parameter, which the person must see to authorize.

use std::fmt::Display;

/// A line on stdout.
#[allow(clippy::print_stdout)]
pub(crate) fn say(line: impl Display) {
    println!("{line}");
}

/// A line on stderr.
#[allow(clippy::print_stderr)]
pub(crate) fn warn(line: impl Display) {
    eprintln!("{line}");
}
