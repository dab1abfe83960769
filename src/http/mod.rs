//! The HTTP edge: routing, auth, extraction, error mapping, and the serving path for bytes.

pub mod api;
pub mod auth;
pub mod console;
pub mod error;
pub mod extract;
pub mod log;
pub mod metrics;
pub mod openapi;
pub mod publish;
pub mod publish_cache;
pub mod routes;
pub mod serve;
pub mod server;
pub mod transcoded;
