//! mediastore: a storage and transcoding server for voice and media platforms.
//!
//! Layers, outside in: [`http`] (thin handlers, the only status mapping) → [`service`]
//! (operations) → [`domain`] (rules, no I/O) and [`store`] (metadata and blob traits with the
//! embedded SQLite + local-disk implementations). The media pipeline is the `mediastore-media`
//! crate; our G.711/G.722 codecs are `mediastore-codecs`.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod fair;
pub mod fuzz;
pub mod http;
pub mod jobs;
pub mod logbuf;
pub mod logline;
pub mod metrics;
pub mod migrate;
pub mod request_id;
pub mod service;
pub mod store;
pub mod transcode;
