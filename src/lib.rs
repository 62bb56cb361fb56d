//! pgcutover: watch and drive a PostgreSQL major-version upgrade by logical replication.
//!
//! # Module map
//!
//! Layers from the bottom up; a module uses only the layers below it (never one above, never one
//! beside it), which `layers::tests` checks on every test run.
//!
//! | layer | modules | holds |
//! |---|---|---|
//! | 0 | `text`, `format`, `files`, `sql`, `harness` | escaping for terminals, time/size/error formatting, capped private files, quoting; throwaway PostgreSQL clusters for the demo and the tests |
//! | 1 | `domain` | pure: LSN math, lag, phase, checks, guards, schema diff, sequences, redo parsing, RDS plans |
//! | 2 | `config` | the TOML file, flags and environment resolved into `Settings` |
//! | 3 | `aws` | a plain AWS client (RDS, CloudWatch, CloudWatch Logs) |
//! | 4 | `collect` | reads of both PostgreSQL sides (and their RDS facts) into domain observations |
//! | 5 | `pgbouncer` | a plain PgBouncer admin-console client and its include file |
//! | 6 | `engine` | guarded, journaled actions: the SQL, the RDS calls and the traffic switch that change things |
//! | 7 | `report`, `app` | the status report; the dashboard's pure state and `update` |
//! | 8 | `ui` | pure drawing of the dashboard's state |
//! | 9 | `tui` | the terminal, the event loop, the pollers |
//! | 10 | `demo` | two local clusters and a writer, shown on the dashboard |
//! | 11 | `cli` | the commands; `main.rs` only calls `cli::main` |

pub mod app;
pub mod aws;
pub mod cli;
pub mod collect;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod files;
pub mod format;
pub mod harness;
pub mod pgbouncer;
pub mod report;
pub mod sql;
pub mod text;
pub mod tui;
pub mod ui;

#[cfg(test)]
mod layers;
