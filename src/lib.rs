//! pgcutover: watch and drive a PostgreSQL major-version upgrade by logical replication.

pub mod app;
pub mod aws;
pub mod cli;
pub mod collect;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod files;
pub mod report;
pub mod sql;
pub mod text;
pub mod tui;
pub mod ui;
