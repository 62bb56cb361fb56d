//! What the configuration file may hold (every table denies unknown keys), and where in the file
//! a value was: every mistake names its key and line.

use std::ops::Range;
use std::path::PathBuf;

use color_eyre::eyre::{Result, bail, eyre};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub blue: Option<SideFile>,
    pub green: Option<SideFile>,
    #[serde(default)]
    pub replication: ReplicationFile,
    #[serde(default)]
    pub cutover: CutoverFile,
    #[serde(default)]
    pub redo: RedoFile,
    #[serde(default)]
    pub poll: PollFile,
    pub aws: Option<AwsFile>,
    pub restore: Option<RestoreFile>,
    /// Dashboard key bindings: `cutover = "C"` or `down = ["j", "Down"]`.
    pub keys: Option<std::collections::BTreeMap<String, KeysValue>>,
    #[serde(default)]
    pub ui: UiFile,
    #[serde(default)]
    pub traffic: TrafficFile,
    #[serde(default)]
    pub analyze: AnalyzeFile,
    #[serde(default)]
    pub verify: VerifyFile,
}

/// `[verify]`: how hard `verify` may read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyFile {
    pub max_rows_per_s: Option<Spanned<u64>>,
    pub chunk_rows: Option<Spanned<u64>>,
    pub statement_timeout_ms: Option<Spanned<u64>>,
    pub required: Option<bool>,
    pub apply_timeout_s: Option<Spanned<u64>>,
}

/// `[analyze]`: the `analyze` action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnalyzeFile {
    pub jobs: Option<Spanned<u64>>,
}

/// `[traffic]`: how the application's connections follow the switch.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrafficFile {
    pub router: Option<Spanned<String>>,
    pub pause_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub pgbouncer: Vec<BouncerFile>,
    pub command: Option<CommandFile>,
}

/// `[[traffic.pgbouncer]]`: one PgBouncer, reached on its admin console.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BouncerFile {
    pub admin: Spanned<String>,
    pub databases: Spanned<Vec<String>>,
    pub include_file: Option<PathBuf>,
    pub retarget_argv: Option<Spanned<Vec<String>>>,
    pub password_env: Option<String>,
}

/// `[traffic.command]`: the operator's own router.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandFile {
    pub argv: Spanned<Vec<String>>,
    pub timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum KeysValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UiFile {
    pub theme: Option<String>,
    pub confirm: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AwsFile {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<Spanned<String>>,
    pub snapshot: Option<Spanned<String>>,
    pub engine_version: Option<String>,
    pub poll_interval_s: Option<Spanned<f64>>,
    pub metrics_interval_s: Option<Spanned<u64>>,
    pub timeout_s: Option<Spanned<u64>>,
    pub action_timeout_min: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RestoreFile {
    pub instance_class: Option<String>,
    pub multi_az: Option<bool>,
    pub subnet_group: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub parameter_group: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SideFile {
    pub dsn: Option<Spanned<String>>,
    pub service: Option<Spanned<String>>,
    pub sslmode: Option<Spanned<String>>,
    pub sslrootcert: Option<PathBuf>,
    pub password_env: Option<String>,
    pub replication_dsn: Option<Spanned<String>>,
    pub rds_instance: Option<Spanned<String>>,
    pub auth: Option<Spanned<String>>,
    /// Replaces the embedded RDS CA bundle for this side.
    pub rds_ca_bundle: Option<PathBuf>,
    /// What PgBouncer's entries say while this side serves.
    pub pgbouncer_target: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplicationFile {
    pub publication: Option<Spanned<String>>,
    pub slot: Option<Spanned<String>>,
    pub subscription: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    /// `databases = ["app", "billing"]` or `databases = "all"`.
    pub databases: Option<Spanned<KeysValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CutoverFile {
    pub app_roles: Option<Spanned<Vec<String>>>,
    pub max_lag_bytes: Option<Spanned<u64>>,
    pub steady_samples: Option<Spanned<u64>>,
    pub sample_interval_ms: Option<Spanned<u64>>,
    pub drain_timeout_s: Option<Spanned<u64>>,
    pub fence_timeout_s: Option<Spanned<u64>>,
    pub gate_timeout_s: Option<Spanned<u64>>,
    pub fence_grace_ms: Option<Spanned<u64>>,
    /// Other logical slots to create on the target inside the window, for their consumers.
    pub carry_slots: Option<Spanned<Vec<String>>>,
    /// Pause pg_cron's active jobs on the source at the fence and activate them on the target.
    pub move_pg_cron: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RedoFile {
    pub source: Option<Spanned<String>>,
    pub log_file: Option<PathBuf>,
    pub not_before: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PollFile {
    pub interval_ms: Option<Spanned<u64>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub inventory_every: Option<Spanned<u64>>,
}

/// The text being read and its name, to say where a value was.
pub(super) struct Place<'a> {
    pub text: &'a str,
    /// The file's path, or "configuration".
    pub label: String,
}

impl Place<'_> {
    /// "FILE, line N" for a value's span.
    pub fn at(&self, span: Range<usize>) -> String {
        format!("{}, line {}", self.label, self.line_col(span.start).0)
    }

    /// The 1-based line and column (in characters) of a byte offset; an offset past the end or
    /// inside a character counts from the character boundary before it.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut start = offset.min(self.text.len());
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// A number setting within its bounds, or an error naming the key, its line and the range.
    /// `!(lo <= v && v <= hi)` also refuses NaN.
    pub fn within<T>(
        &self,
        v: Option<&Spanned<T>>,
        key: &str,
        lo: T,
        hi: T,
        default: T,
    ) -> Result<T>
    where
        T: Copy + PartialOrd + std::fmt::Display,
    {
        match v {
            None => Ok(default),
            Some(s) => {
                let x = *s.get_ref();
                if lo <= x && x <= hi {
                    Ok(x)
                } else {
                    bail!(
                        "{}: {key} = {x} is out of range: use {lo} to {hi} (default {default})",
                        self.at(s.span())
                    )
                }
            }
        }
    }
}

/// A name as a key is written bare: letters, digits, `_` and `-`, short.
fn plain_key(name: &str) -> Option<&str> {
    let plain = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    plain.then_some(name)
}

/// Parse the file's text into its schema.
pub(super) fn parse(place: &Place<'_>) -> Result<FileConfig> {
    toml::from_str(place.text).map_err(|e| toml_error(place, &e))
}

/// A TOML error without the line it quotes (the line may hold a password), and without quoted
/// values in serde's message (`invalid type: string "…"`): the line and column say where.
fn toml_error(place: &Place<'_>, e: &toml::de::Error) -> color_eyre::eyre::Report {
    let at = match e.span() {
        Some(span) => {
            let (line, col) = place.line_col(span.start);
            format!(", line {line}, column {col}")
        }
        None => String::new(),
    };
    eyre!(
        "{}{at}: {}",
        place.label,
        redact_quoted(e.message().trim_end())
    )
}

/// Replace every `"…"` in a message by `"…"`; keep a `` `…` `` name only when it reads like a
/// key (a quoted TOML key may hold anything, a DSN with its password among them).
fn redact_quoted(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let q = rest.as_bytes()[i] as char;
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(j) = after.find(q) {
            if q == '"' {
                out.push_str("\"…\"");
            } else {
                out.push('`');
                out.push_str(plain_key(&after[..j]).unwrap_or("…"));
                out.push('`');
            }
            rest = &after[j + 1..];
        } else {
            // an unclosed quote: nothing after it is shown
            out.push(q);
            out.push('…');
            rest = "";
        }
    }
    out.push_str(rest);
    crate::text::one_line(&out).into_owned()
}
