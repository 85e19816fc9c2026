//! The logins waiting for their browser: one per server, each with the callback it expects
//! and the channel that ends it.

use std::sync::Mutex;

use crate::engine::state::control::ControlSender;
use crate::oauth::callback::ExpectedCallback;

pub(crate) struct PendingLogin {
    pub(crate) id: u64,
    /// The redirect a browser login waits for; `None` for a device login (RFC 8628), which
    /// has none to paste.
    pub(crate) expected: Mutex<Option<ExpectedCallback>>,
    pub(crate) control: ControlSender,
}
