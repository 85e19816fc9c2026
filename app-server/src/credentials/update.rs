//! The vocabulary of a compare-and-save ([`super::CredentialStore::update`]): what the
//! caller decides for the entry it finds, and what the store answers.

use super::error::StoreError;
use super::model::{StoredCredentials, StoredLink};

/// What [`super::CredentialStore::update`] makes of the entry it found.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per store call
pub enum Update {
    /// Leave the entry as it is.
    Keep,
    /// Store this (for the same key) instead.
    Save(StoredCredentials),
    Delete,
    /// Share the login of another server instead (rule 85): the entry becomes a link to
    /// that server's entry, if it holds tokens of the link's issuer for its resource.
    /// Backends that cannot keep links keep the entry as it is.
    Link(StoredLink),
}

/// The decision of an [`super::CredentialStore::update`], given the entry stored now.
pub(crate) type Decide<'a> = Box<dyn FnOnce(Option<&StoredCredentials>) -> Update + 'a>;

/// What one update leaves stored for its key, or why it failed.
pub(crate) type UpdateResult = Result<Option<StoredCredentials>, StoreError>;
