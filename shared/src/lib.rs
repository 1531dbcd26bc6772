//! Types shared by the server and the browser app.
//!
//! Everything here compiles for `wasm32-unknown-unknown` as well as the host, so the app and the
//! server agree on one definition of a date, a variable's metadata and every API shape.

pub mod api;
pub mod date;
pub mod metadata;
pub mod names;
pub mod output;
pub mod script;

pub use date::Date;
pub use names::{DatastoreName, VariableName};
