//! Making the container's init process: clone, the parent <-> init channel, the init recipe.

pub mod channel;
pub mod clone;
pub mod finish;
pub mod init;
pub mod joiner;
