//! The state the service holds, one concern per file. Leaves: they import neither the
//! service nor a flow.

pub(crate) mod challenges;
pub(crate) mod control;
pub(crate) mod live;
pub(crate) mod logins;
pub(crate) mod preregistrations;
pub(crate) mod refreshes;
pub(crate) mod registration_saves;
