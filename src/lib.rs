pub mod config;
pub mod keys;
pub mod tokens;
