//! Themes: semantic roles (ok, warn, critical, muted, accent, …) mapped to ANSI palette styles,
//! from `themes/*.toml` (built in) or `$XDG_CONFIG_HOME/pgcutover/themes/NAME.toml`.

use std::collections::BTreeMap;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

const BUILT_IN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub title: Style,
    pub ok: Style,
    pub warn: Style,
    pub critical: Style,
    pub border: Style,
    pub border_focus: Style,
    pub selected: Style,
    pub badge_read_only: Style,
    pub badge_write: Style,
    pub alarm: Style,
    pub window_timer: Style,
    pub chart: Style,
    pub blue_side: Style,
    pub green_side: Style,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RoleFile {
    Color(String),
    Full {
        fg: Option<String>,
        bg: Option<String>,
        #[serde(default)]
        bold: bool,
        #[serde(default)]
        reverse: bool,
        #[serde(default)]
        dim: bool,
    },
}

fn color(name: &str) -> Result<Color, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        other => {
            return Err(format!(
                "colour {other:?} is not an ANSI palette name (black, red, green, yellow, blue, magenta, cyan, gray, \
                 darkgray, light…, white, reset)"
            ));
        }
    })
}

fn style(r: &RoleFile, no_color: bool) -> Result<Style, String> {
    let mut s = Style::default();
    match r {
        RoleFile::Color(c) => {
            let c = color(c)?;
            if !no_color && c != Color::Reset {
                s = s.fg(c);
            }
        }
        RoleFile::Full {
            fg,
            bg,
            bold,
            reverse,
            dim,
        } => {
            if let Some(fg) = fg {
                let c = color(fg)?;
                if !no_color && c != Color::Reset {
                    s = s.fg(c);
                }
            }
            if let Some(bg) = bg {
                let c = color(bg)?;
                if !no_color && c != Color::Reset {
                    s = s.bg(c);
                }
            }
            if *bold {
                s = s.add_modifier(Modifier::BOLD);
            }
            if *dim {
                s = s.add_modifier(Modifier::DIM);
            }
            // Without colour, a background has to be shown as reverse video.
            if *reverse || (no_color && bg.as_deref().is_some_and(|b| b != "reset")) {
                s = s.add_modifier(Modifier::REVERSED);
            }
        }
    }
    Ok(s)
}

impl Theme {
    /// Parse a theme; `no_color` drops every colour and keeps bold/reverse/dim.
    pub fn parse(name: &str, text: &str, no_color: bool) -> Result<Theme, String> {
        let roles: BTreeMap<String, RoleFile> =
            toml::from_str(text).map_err(|e| format!("theme {name}: {e}"))?;
        let get = |role: &str| -> Result<Style, String> {
            match roles.get(role) {
                Some(r) => {
                    style(r, no_color).map_err(|e| format!("theme {name}, role {role}: {e}"))
                }
                None => Err(format!("theme {name} has no role {role:?}")),
            }
        };
        const KNOWN: [&str; 17] = [
            "text",
            "muted",
            "accent",
            "title",
            "ok",
            "warn",
            "critical",
            "border",
            "border_focus",
            "selected",
            "badge_read_only",
            "badge_write",
            "alarm",
            "window_timer",
            "chart",
            "blue_side",
            "green_side",
        ];
        for (role, r) in &roles {
            if !KNOWN.contains(&role.as_str()) {
                return Err(format!(
                    "theme {name}: unknown role {role:?}; roles are {}",
                    KNOWN.join(", ")
                ));
            }
            style(r, no_color).map_err(|e| format!("theme {name}, role {role}: {e}"))?;
        }
        Ok(Theme {
            name: name.to_string(),
            text: get("text")?,
            muted: get("muted")?,
            accent: get("accent")?,
            title: get("title")?,
            ok: get("ok")?,
            warn: get("warn")?,
            critical: get("critical")?,
            border: get("border")?,
            border_focus: get("border_focus")?,
            selected: get("selected")?,
            badge_read_only: get("badge_read_only")?,
            badge_write: get("badge_write")?,
            alarm: get("alarm")?,
            window_timer: get("window_timer")?,
            chart: get("chart")?,
            blue_side: get("blue_side")?,
            green_side: get("green_side")?,
        })
    }

    /// A built-in theme, or `NAME.toml` in the user's theme directory.
    pub fn load(name: &str, no_color: bool) -> Result<Theme, String> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
            return Theme::parse(name, text, no_color);
        }
        // A theme name is a file name in the themes directory, never a path out of it.
        let plain = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plain {
            return Err(format!(
                "theme name \"{}\" is not a plain name: use letters, digits, - and _ (up to 64), for NAME.toml in \
                 the themes directory; built in are {}",
                crate::text::echo(name),
                BUILT_IN.map(|(n, _)| n).join(", ")
            ));
        }
        let dir =
            crate::config::default_config_path().and_then(|p| p.parent().map(|d| d.join("themes")));
        let path = dir.map(|d| d.join(format!("{name}.toml")));
        let read = path
            .as_ref()
            .map(|p| crate::files::read_text_capped(p, 64 * 1024, "theme"));
        match read {
            Some(Ok(text)) => Theme::parse(name, &text, no_color),
            Some(Err(crate::files::ReadError::Other(e))) => Err(format!("theme {name}: {e}")),
            _ => Err(format!(
                "no theme {name:?}: built in are {}; or put {name}.toml in {}",
                BUILT_IN.map(|(n, _)| n).join(", "),
                path.as_ref().and_then(|p| p.parent()).map_or_else(
                    || "~/.config/pgcutover/themes".into(),
                    |d| d.display().to_string()
                )
            )),
        }
    }

    pub fn dark() -> Theme {
        Theme::load("dark", false).expect("built-in theme")
    }

    pub fn mono() -> Theme {
        Theme::load("mono", true).expect("built-in theme")
    }
}

/// `NO_COLOR` set to anything non-empty (https://no-color.org).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_parse_and_mono_has_no_colour() {
        for (name, text) in BUILT_IN {
            Theme::parse(name, text, false).unwrap();
        }
        let m = Theme::load("dark", true).unwrap();
        for s in [m.ok, m.warn, m.critical, m.alarm, m.badge_write, m.chart] {
            assert_eq!(s.fg, None);
            assert_eq!(s.bg, None);
        }
        assert!(
            m.alarm.add_modifier.contains(Modifier::REVERSED),
            "background shown as reverse"
        );
    }

    #[test]
    fn bad_themes_name_the_problem() {
        let e = Theme::parse("x", "ok = \"chartreuse\"", false).unwrap_err();
        assert!(e.contains("role ok") && e.contains("ANSI"), "{e}");
        let e = Theme::parse("x", "okay = \"green\"", false).unwrap_err();
        assert!(e.contains("unknown role"), "{e}");
        let e = Theme::load("neon", false).unwrap_err();
        assert!(e.contains("built in are dark, light, mono"), "{e}");
        for evil in ["../../x", "/etc/passwd", "a/b", "..", "", "x\u{1b}[2J"] {
            let e = Theme::load(evil, false).unwrap_err();
            assert!(e.contains("not a plain name"), "{evil:?}: {e}");
            assert!(!e.contains('\u{1b}'), "{e}");
        }
        let e = Theme::load(&"x".repeat(1_000_000), false).unwrap_err();
        assert!(e.len() < 500, "a huge name is clipped");
    }
}
