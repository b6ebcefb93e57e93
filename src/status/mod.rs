//! The operator socket: HTTP/1.1 + JSON on a Unix socket (server), its wire types, and the CLI client.

pub mod client;
