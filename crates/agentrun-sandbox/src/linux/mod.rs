//! Confinement on Linux: Landlock for the filesystem, namespaces for the network.

pub(crate) mod filesystem;
pub(crate) mod namespaces;
