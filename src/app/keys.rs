//! The keymap: every binding carries its description, so the help screen and the footer are
//! generated from it. Action keys are upper-case by default (a stray lower-case key never starts
//! anything) and can be rebound in the `[keys]` table of the configuration.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::domain::guards::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// Open the guarded dialog of one of `Action::ON_DASHBOARD`.
    Run(Action),
    Help,
    Quit,
    NextPanel,
    PrevPanel,
    Freeze,
    Faster,
    Slower,
    Down,
    Up,
    Confirm,
    Cancel,
}

impl Command {
    /// The name used in the `[keys]` table.
    pub fn name(self) -> &'static str {
        match self {
            Command::Run(a) => a.word(),
            Command::Help => "help",
            Command::Quit => "quit",
            Command::NextPanel => "next_panel",
            Command::PrevPanel => "prev_panel",
            Command::Freeze => "freeze",
            Command::Faster => "faster",
            Command::Slower => "slower",
            Command::Down => "down",
            Command::Up => "up",
            Command::Confirm => "confirm",
            Command::Cancel => "cancel",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Command::Run(a) => a.describe(),
            Command::Help => "this help",
            Command::Quit => "quit (asks first while an action runs)",
            Command::NextPanel => "next panel (also 1–9 to jump)",
            Command::PrevPanel => "previous panel",
            Command::Freeze => "freeze / unfreeze the view",
            Command::Faster => "refresh faster",
            Command::Slower => "refresh slower",
            Command::Down => "scroll down",
            Command::Up => "scroll up",
            Command::Confirm => "confirm the dialog",
            Command::Cancel => "cancel the dialog",
        }
    }

    pub fn action(self) -> Option<Action> {
        match self {
            Command::Run(a) => Some(a),
            _ => None,
        }
    }

    const ALL: [Command; 19] = [
        Command::Run(Action::ON_DASHBOARD[0]),
        Command::Run(Action::ON_DASHBOARD[1]),
        Command::Run(Action::ON_DASHBOARD[2]),
        Command::Run(Action::ON_DASHBOARD[3]),
        Command::Run(Action::ON_DASHBOARD[4]),
        Command::Run(Action::ON_DASHBOARD[5]),
        Command::Run(Action::ON_DASHBOARD[6]),
        Command::Run(Action::ON_DASHBOARD[7]),
        Command::Help,
        Command::Quit,
        Command::NextPanel,
        Command::PrevPanel,
        Command::Freeze,
        Command::Faster,
        Command::Slower,
        Command::Down,
        Command::Up,
        Command::Confirm,
        Command::Cancel,
    ];
}

/// A key as written in the configuration: one character (`C`, `?`, `+`) or a name (`Tab`,
/// `Enter`, `Esc`, `Space`, `Up`, `Down`, `BackTab`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub KeyCode);

impl Key {
    pub fn parse(s: &str) -> Option<Key> {
        let mut chars = s.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            // A control character never arrives as a typed character (the terminal sends Esc,
            // Tab, Enter for them), and would be written raw into the hints.
            return (!c.is_control()).then_some(Key(KeyCode::Char(c)));
        }
        Some(Key(match s.to_ascii_lowercase().as_str() {
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            _ => return None,
        }))
    }

    pub fn label(self) -> String {
        match self.0 {
            KeyCode::Char(' ') => "Space".into(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            other => format!("{other:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    /// Command → its keys, the first being the one shown.
    pub bindings: BTreeMap<Command, Vec<Key>>,
}

impl Default for Keymap {
    fn default() -> Self {
        let mut b = BTreeMap::new();
        let k = |c: char| Key(KeyCode::Char(c));
        b.insert(Command::Run(Action::Prepare), vec![k('P')]);
        b.insert(Command::Run(Action::Subscribe), vec![k('S')]);
        b.insert(Command::Run(Action::Start), vec![k('E')]);
        b.insert(Command::Run(Action::Cutover), vec![k('C')]);
        b.insert(Command::Run(Action::Rollback), vec![k('R')]);
        b.insert(Command::Run(Action::Finalize), vec![k('F')]);
        b.insert(Command::Run(Action::Analyze), vec![k('A')]);
        b.insert(Command::Run(Action::Verify), vec![k('V')]);
        b.insert(Command::Help, vec![k('?')]);
        b.insert(Command::Quit, vec![k('q')]);
        b.insert(Command::NextPanel, vec![Key(KeyCode::Tab)]);
        b.insert(Command::PrevPanel, vec![Key(KeyCode::BackTab)]);
        b.insert(Command::Freeze, vec![k(' ')]);
        b.insert(Command::Faster, vec![k('+')]);
        b.insert(Command::Slower, vec![k('-')]);
        b.insert(Command::Down, vec![k('j'), Key(KeyCode::Down)]);
        b.insert(Command::Up, vec![k('k'), Key(KeyCode::Up)]);
        b.insert(Command::Confirm, vec![Key(KeyCode::Enter), k('y')]);
        b.insert(Command::Cancel, vec![Key(KeyCode::Esc), k('n')]);
        Keymap { bindings: b }
    }
}

impl Keymap {
    /// The default map with the `[keys]` table's bindings (`cutover = "C"` or `["C", "c"]`)
    /// replacing the defaults of the commands they name.
    pub fn with_overrides(table: &BTreeMap<String, Vec<String>>) -> Result<Keymap, String> {
        let mut m = Keymap::default();
        for (name, keys) in table {
            let cmd = Command::ALL
                .iter()
                .copied()
                .find(|c| c.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Command::ALL.iter().map(|c| c.name()).collect();
                    format!(
                        "[keys] {name}: no such command; known: {}",
                        names.join(", ")
                    )
                })?;
            if keys.is_empty() {
                return Err(format!("[keys] {name}: give at least one key"));
            }
            let parsed = keys
                .iter()
                .map(|k| {
                    Key::parse(k).ok_or_else(|| {
                        format!(
                            "[keys] {name} = {k:?}: a key is one character or one of Tab, BackTab, Enter, Esc, Space, \
                             Up, Down, PageUp, PageDown"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            m.bindings.insert(cmd, parsed);
        }
        // One key, one meaning, except that dialog keys may repeat outside dialogs' commands.
        let mut seen: Vec<(Key, Command)> = Vec::new();
        for (cmd, keys) in &m.bindings {
            for k in keys {
                let dialog = |c: Command| matches!(c, Command::Confirm | Command::Cancel);
                if let Some((_, other)) = seen.iter().find(|(sk, _)| sk == k)
                    && dialog(*other) == dialog(*cmd)
                {
                    return Err(format!(
                        "[keys]: {} is bound to both {} and {}",
                        k.label(),
                        other.name(),
                        cmd.name()
                    ));
                }
                seen.push((*k, *cmd));
            }
        }
        Ok(m)
    }

    /// What a key press means outside (`dialog` false) or inside a dialog.
    pub fn command(&self, ev: &KeyEvent, dialog: bool) -> Option<Command> {
        // Shift+letter arrives as the upper-case char: `C` is Shift+c, as the operator expects.
        let code = ev.code;
        self.bindings.iter().find_map(|(cmd, keys)| {
            let is_dialog_cmd = matches!(cmd, Command::Confirm | Command::Cancel);
            (is_dialog_cmd == dialog && keys.iter().any(|k| k.0 == code)).then_some(*cmd)
        })
    }

    pub fn shown_key(&self, cmd: Command) -> String {
        self.bindings
            .get(&cmd)
            .and_then(|k| k.first())
            .map(|k| k.label())
            .unwrap_or_default()
    }

    /// Every key of a command as hints show them (`Enter/y`).
    pub fn keys(&self, cmd: Command) -> String {
        self.bindings
            .get(&cmd)
            .map(|ks| ks.iter().map(|k| k.label()).collect::<Vec<_>>().join("/"))
            .unwrap_or_default()
    }

    /// The first keys of two commands as one hint (`j/k`, `+/-`).
    pub fn pair(&self, a: Command, b: Command) -> String {
        format!("{}/{}", self.shown_key(a), self.shown_key(b))
    }

    /// The help lines: key(s), description.
    pub fn help(&self) -> Vec<(String, &'static str)> {
        Command::ALL
            .iter()
            .map(|c| {
                let keys: Vec<String> = self
                    .bindings
                    .get(c)
                    .map(|ks| ks.iter().map(|k| k.label()).collect())
                    .unwrap_or_default();
                (keys.join(" "), c.describe())
            })
            .collect()
    }
}

/// Ctrl-C and Ctrl-Z are not rebindable.
pub fn is_ctrl(ev: &KeyEvent, c: char) -> bool {
    ev.modifiers.contains(KeyModifiers::CONTROL) && ev.code == KeyCode::Char(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn a_control_character_is_not_a_key() {
        assert_eq!(Key::parse("\u{1b}"), None);
        assert_eq!(Key::parse("\u{7}"), None);
        assert_eq!(Key::parse("\u{85}"), None);
        assert_eq!(Key::parse("é"), Some(Key(KeyCode::Char('é'))));
    }

    #[test]
    fn defaults_and_dialog_context() {
        let m = Keymap::default();
        assert_eq!(
            m.command(&press(KeyCode::Char('C')), false),
            Some(Command::Run(Action::Cutover))
        );
        assert_eq!(
            m.command(&press(KeyCode::Char('c')), false),
            None,
            "lower case does nothing"
        );
        assert_eq!(
            m.command(&press(KeyCode::Char('y')), true),
            Some(Command::Confirm)
        );
        assert_eq!(m.command(&press(KeyCode::Char('y')), false), None);
        assert_eq!(m.command(&press(KeyCode::Esc), true), Some(Command::Cancel));
    }

    #[test]
    fn overrides_replace_and_conflicts_are_named() {
        let mut t = BTreeMap::new();
        t.insert("cutover".to_string(), vec!["X".to_string()]);
        let m = Keymap::with_overrides(&t).unwrap();
        assert_eq!(
            m.command(&press(KeyCode::Char('X')), false),
            Some(Command::Run(Action::Cutover))
        );
        assert_eq!(m.command(&press(KeyCode::Char('C')), false), None);
        t.insert("rollback".to_string(), vec!["X".to_string()]);
        let e = Keymap::with_overrides(&t).unwrap_err();
        assert!(e.contains("bound to both"), "{e}");
        let mut t = BTreeMap::new();
        t.insert("launch".to_string(), vec!["L".to_string()]);
        assert!(
            Keymap::with_overrides(&t)
                .unwrap_err()
                .contains("no such command")
        );
        let mut t = BTreeMap::new();
        t.insert("help".to_string(), vec!["F1x".to_string()]);
        assert!(
            Keymap::with_overrides(&t)
                .unwrap_err()
                .contains("one character")
        );
    }

    #[test]
    fn help_lists_every_command_with_its_keys() {
        let h = Keymap::default().help();
        assert_eq!(h.len(), Command::ALL.len());
        assert!(h.iter().any(|(k, d)| k == "C" && d.contains("cut over")));
        assert!(h.iter().any(|(k, _)| k == "j ↓"));
    }
}
