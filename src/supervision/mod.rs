//! The supervision layer: the one owner of service state ([`supervisor`]), the pure state machine
//! it drives ([`service`]), the services' output ([`logs`]), readiness and health probes
//! ([`probe`], with the probes' TLS identity in [`tls`]) and `wait_for` across containers
//! ([`remote_wait`]).

pub mod logs;
pub mod probe;
pub mod remote_wait;
pub mod service;
pub mod supervisor;
pub mod tls;
