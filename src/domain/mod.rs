//! Domain rules: validation, quotas, thresholds, classification, signed links. No I/O here.

pub mod container;
pub mod detect;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod external;
pub mod file;
pub mod input;
pub mod model;
pub mod quota;
pub mod rules;
pub mod sealing;
pub mod signing;
pub mod threshold;
pub mod time;

pub use error::DomainError;
pub use time::Timestamp;
