//! Support for the real-client suites (integration/clients): podman, containerd's ctr and
//! Kubernetes' CRI driving a runtime the way their users do, each in private state.

pub mod check;
pub mod cmd;
pub mod containerd;
pub mod host;
pub mod image;
pub mod leaks;
pub mod podman;
pub mod runtime;
pub mod suite;
