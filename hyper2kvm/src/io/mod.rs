//! The lowest layer: reading sources ([`ByteSource`]: a file or a byte range of one, with
//! bounds-checked reads), writing results atomically, keeping untrusted names inside their
//! directory, and the small text and time formats every layer shares. It knows nothing of
//! disk formats, guests or jobs.

mod atomic;
mod paths;
pub mod sha256;
pub mod source;
mod text;
mod threads;
mod time;

pub use atomic::{write_atomically, write_json};
pub use paths::{confined, confined_relative_path, lexical, safe_file_stem};
pub use source::ByteSource;
pub use text::parse_mac;
pub use threads::in_threads;
pub use time::rfc3339;
