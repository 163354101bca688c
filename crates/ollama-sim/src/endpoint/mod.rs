//! One module per REST endpoint; each holds the `Simulator` method and the HTTP handler.

pub(crate) mod chat;
pub(crate) mod generate;
pub(crate) mod ps;
pub(crate) mod show;
pub(crate) mod sim;
pub(crate) mod tags;
pub(crate) mod version;
