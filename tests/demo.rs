//! The demo a newcomer runs first: its app writes through a real PgBouncer, the cutover it
//! shows switches that PgBouncer, and the app's failed count stays 0; everything it started is
//! gone afterwards.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use common::*;

/// The characters an SVG frame shows, without markup or spaces.
fn svg_text(path: &std::path::Path) -> String {
    let svg = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut in_tag = false;
    for c in svg.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag && !c.is_whitespace() => out.push(c),
            _ => {}
        }
    }
    out.replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&amp;", "&")
}

#[test]
fn the_demos_app_writes_through_pgbouncer_and_sees_no_failure_at_the_cutover() {
    let home = tempfile::tempdir().unwrap();
    let shots = home.path().join("shots");
    let r = run(pgcutover(home.path())
        .arg("demo")
        .arg("--screenshots")
        .arg(&shots));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("the app writes through it"),
        "the demo must start its PgBouncer: {}",
        r.stderr
    );
    // The dialog says what the app will see, and asks for the name to be typed.
    let dialog = svg_text(&shots.join("cutover-dialog-160x48.svg"));
    assert!(dialog.contains("theapp:PgBouncerholds"), "{dialog}");
    assert!(dialog.contains("typecutoverthenEnter"), "{dialog}");
    // A verify of the demo's pair, each table verified while the app writes; its result is
    // the demo's, not kept where a real pair's last verify is.
    let verify = svg_text(&shots.join("verify-160x48.svg"));
    assert!(
        verify.contains("lastrun") && verify.contains("rows/s"),
        "{verify}"
    );
    assert!(verify.contains("✓public.orders"), "{verify}");
    assert!(!verify.contains("differ"), "{verify}");
    assert!(
        !home
            .path()
            .join("state/pgcutover/verify-last.json")
            .exists(),
        "the demo's verify went to the real state directory"
    );
    let after = svg_text(&shots.join("after-cutover-160x48.svg"));
    assert!(after.contains("traffic→GREEN"), "{after}");
    assert!(after.contains("committed,0failed"), "{after}");
    assert!(after.contains("appheld"), "the Traffic panel: {after}");
    // Everything it started is stopped and removed.
    let removed = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("demo: stopped the clusters, removing "))
        .unwrap();
    for d in removed.split(", ") {
        assert!(!std::path::Path::new(d).exists(), "{d} is still there");
    }
}
