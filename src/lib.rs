//! pgcutover: watch and drive a PostgreSQL major-version upgrade by logical replication.

pub mod config;
pub mod domain;
pub mod sql;
