//! A program in a real terminal: a tmux session on its own server, read by capturing the pane.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use super::wait_for;

pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    pub fn start(script: &std::path::Path, w: u16, h: u16) -> Tmux {
        let t = Tmux {
            socket: format!("pgcutover-test-{}", std::process::id()),
            session: "dash".into(),
        };
        let st = t
            .cmd()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", &t.session])
            .args(["-x", &w.to_string(), "-y", &h.to_string()])
            .arg(script)
            .status()
            .expect("tmux: install it (bash tests/setup.sh)");
        assert!(st.success());
        t
    }

    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into()
    }

    pub fn keys(&self, keys: &[&str]) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
    }

    pub fn wait_for(&self, what: &str, timeout: Duration) -> String {
        let mut last = String::new();
        let found = (0..(timeout.as_millis() / 100)).any(|_| {
            last = self.screen();
            if last.contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
            false
        });
        assert!(found, "the screen never showed {what:?}; it shows:\n{last}");
        last
    }
}

impl Tmux {
    /// Until the program in the pane has exited (tmux then closes the session).
    pub fn wait_exit(&self) {
        wait_for("the dashboard to exit", Duration::from_secs(10), || {
            let alive = self
                .cmd()
                .args(["has-session", "-t", &self.session])
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
                .success();
            (!alive).then_some(())
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A script that runs the dashboard in the clean environment of the other CLI tests, for tmux.
pub fn dashboard_script(
    home: &std::path::Path,
    cfg: &std::path::Path,
    args: &str,
) -> std::path::PathBuf {
    let script = home.join("dashboard.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec env -i PATH=/usr/bin:/bin HOME={h} XDG_CONFIG_HOME={h}/config XDG_STATE_HOME={h}/state \
             TERM=xterm-256color AWS_EC2_METADATA_DISABLED=true {bin} --config {cfg} {args}\n",
            h = home.display(),
            bin = env!("CARGO_BIN_EXE_pgcutover"),
            cfg = cfg.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();
    script
}
