//! A rendered frame (ratatui `Buffer`) as an SVG image, for the README's screenshots: the cells
//! exactly as the terminal would show them, with a common dark-terminal ANSI palette.

use std::fmt::Write;

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

const CELL_W: f64 = 8.4;
const CELL_H: f64 = 17.0;
const BG: &str = "#1e1e1e";
const FG: &str = "#d4d4d4";

fn rgb(c: Color, default: &'static str) -> String {
    match c {
        Color::Reset => default.into(),
        Color::Black => "#000000".into(),
        Color::Red => "#cd3131".into(),
        Color::Green => "#0dbc79".into(),
        Color::Yellow => "#e5e510".into(),
        Color::Blue => "#2472c8".into(),
        Color::Magenta => "#bc3fbc".into(),
        Color::Cyan => "#11a8cd".into(),
        Color::Gray => "#e5e5e5".into(),
        Color::DarkGray => "#666666".into(),
        Color::LightRed => "#f14c4c".into(),
        Color::LightGreen => "#23d18b".into(),
        Color::LightYellow => "#f5f543".into(),
        Color::LightBlue => "#3b8eea".into(),
        Color::LightMagenta => "#d670d6".into(),
        Color::LightCyan => "#29b8db".into(),
        Color::White => "#ffffff".into(),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Indexed(_) => default.into(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(buf: &Buffer) -> String {
    let area = buf.area;
    let (w, h) = (
        f64::from(area.width) * CELL_W,
        f64::from(area.height) * CELL_H,
    );
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.1} {h:.1}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="{BG}"/>"#);
    for y in 0..area.height {
        for x in 0..area.width {
            let c = &buf[(x, y)];
            let rev = c.modifier.contains(Modifier::REVERSED);
            let (mut fg, mut bg) = (rgb(c.fg, FG), rgb(c.bg, BG));
            if rev {
                std::mem::swap(&mut fg, &mut bg);
            }
            if bg != BG {
                let _ = writeln!(
                    o,
                    r#"<rect x="{:.1}" y="{:.1}" width="{CELL_W}" height="{CELL_H}" fill="{bg}"/>"#,
                    f64::from(x) * CELL_W,
                    f64::from(y) * CELL_H
                );
            }
            let sym = c.symbol();
            if sym.trim().is_empty() {
                continue;
            }
            let weight = if c.modifier.contains(Modifier::BOLD) {
                r#" font-weight="bold""#
            } else {
                ""
            };
            let opacity = if c.modifier.contains(Modifier::DIM) {
                r#" opacity="0.6""#
            } else {
                ""
            };
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" fill="{fg}"{weight}{opacity}>{}</text>"#,
                f64::from(x) * CELL_W,
                f64::from(y) * CELL_H + CELL_H * 0.78,
                esc(sym)
            );
        }
    }
    o.push_str("</svg>\n");
    o
}
