//! One module per subcommand.

pub mod convert;
pub mod domain;
pub mod inspect;
pub mod probe;
pub mod run;
