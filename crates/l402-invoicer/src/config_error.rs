//! A configuration that cannot be used, named by what is wrong: the file, its TOML, or a field by
//! its path (`services[0].price_sat`). Every section's owner reports its fields this way.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {problem}")]
    Read { path: String, problem: String },
    #[error("configuration is not valid TOML: {0}")]
    Toml(String),
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
}

pub fn field(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}
