//! oauth
pub mod callback;
