//! pgcutover: watch and drive a PostgreSQL major-version upgrade by logical replication.

pub mod aws;
pub mod cli;
pub mod collect;
pub mod config;
pub mod domain;
pub mod engine;
pub mod report;
pub mod sql;
