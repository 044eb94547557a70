//! How the client prints: aligned tables that fit the terminal, or the raw data as JSON or
//! YAML.

use comfy_table::{ColumnConstraint, ContentArrangement, Table, Width, presets};
use serde_json::Value;

use super::{ClientError, Result};

/// `-o`: the output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table that fits the terminal.
    #[default]
    Table,
    /// The server's JSON (a model with its etag added).
    Json,
    /// The same data as YAML.
    Yaml,
}

/// Prints `value` as JSON or YAML (not for tables).
pub fn print_data(format: Format, value: &Value) -> Result<()> {
    match format {
        Format::Yaml => print!("{}", to_yaml(value)?),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(value).expect("JSON values serialize")
        ),
    }
    Ok(())
}

pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_norway::to_string(value)
        .map_err(|e| ClientError::usage(format!("cannot write YAML: {e}")))
}

/// The width tables must fit: `COLUMNS` when it is set (as shells and tests do), else the
/// terminal's own when stdout is one. None means no wrapping: stdout is not a terminal, or the
/// width is 0 (`COLUMNS=0`, or a terminal that does not know its size and reports 0 x 0).
fn width() -> Option<u16> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok());
    columns.or_else(terminal_width).filter(|w| *w > 0)
}

/// The width of the terminal stdout is, if it is one. Asked of stdout itself, not of the
/// controlling terminal, since stdout is where the table goes.
fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`, which outlives the call.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (rc == 0).then_some(size.ws_col)
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    // The width is decided here (`fit`), never by comfy-table asking a terminal on its own.
    t.force_no_tty()
        .load_style(presets::NOTHING)
        .set_header(header.iter().map(|h| h.to_string()));
    t
}

/// The table as text, fitted to the width: the columns in `wrapping` wrap, each kept at least
/// `min` characters wide (or as wide as its widest value, if that is less); the others are never
/// wrapped. When the table cannot fit that way it is printed unwrapped, one line a row, as for a
/// pipe: whole values on long lines read better than values cut into slivers.
fn fit(mut t: Table, wrapping: &[usize], min: u16) -> String {
    let widths = t.column_max_content_widths();
    let floor = |i: usize, w: u16| if wrapping.contains(&i) { w.min(min) } else { w };
    // Each cell is padded by one blank on either side.
    let needed: u32 = widths
        .iter()
        .enumerate()
        .map(|(i, w)| u32::from(floor(i, *w)) + 2)
        .sum();
    match width() {
        Some(w) if needed <= u32::from(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(w);
            for (i, cw) in widths.iter().enumerate() {
                let constraint = if wrapping.contains(&i) {
                    ColumnConstraint::LowerBoundary(Width::Fixed(floor(i, *cw)))
                } else {
                    ColumnConstraint::ContentWidth
                };
                if let Some(c) = t.column_mut(i) {
                    c.set_constraint(constraint);
                }
            }
        }
        _ => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    trim_lines(&t.to_string())
}

/// A cell's text: strings as they are, lists joined by commas, null as empty.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Model summaries, one a row.
pub fn models_table(models: &[Value]) -> String {
    const COLUMNS: [(&str, &str); 7] = [
        ("RESOURCE_URI", "resource_uri"),
        ("NAME", "name"),
        ("MODEL", "litellm_model"),
        ("PROVIDER", "provider"),
        ("MODE", "mode"),
        ("STATUS", "status"),
        ("TAGS", "tags"),
    ];
    let mut t = table(&COLUMNS.map(|(h, _)| h));
    for m in models {
        t.add_row(COLUMNS.map(|(_, k)| cell(&m[k])));
    }
    // The key and the short enums stay whole; names, model strings and tags wrap, down to a
    // width that still holds a word (a 72-column terminal still wraps a typical list).
    fit(t, &[1, 2, 6], 6)
}

/// One object as `FIELD  value` lines, in the given key order, then any other keys.
pub fn record_table(record: &Value, order: &[&str]) -> String {
    let mut t = table(&["FIELD", "VALUE"]);
    let Some(map) = record.as_object() else {
        return cell(record);
    };
    for key in order {
        if let Some(v) = map.get(*key) {
            t.add_row([key.to_string(), cell(v)]);
        }
    }
    for (k, v) in map {
        if !order.contains(&k.as_str()) {
            t.add_row([k.clone(), cell(v)]);
        }
    }
    // Values wrap, but never narrower than a timestamp's date and time.
    fit(t, &[1], 20)
}

/// Rows of any objects, with the given columns.
pub fn rows_table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let mut t = table(&headers);
    for r in rows {
        t.add_row(columns.iter().map(|(_, k)| cell(&r[*k])));
    }
    // Only the last column wraps.
    fit(t, &[columns.len().saturating_sub(1)], 8)
}

/// comfy-table pads every cell; trailing blanks only get in the way of diffs and tests.
fn trim_lines(s: &str) -> String {
    s.lines()
        .map(|l| l.trim_end().strip_prefix(' ').unwrap_or(l.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_read_naturally() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!(["a", "b"])), "a,b");
        assert_eq!(cell(&json!(60)), "60");
        assert_eq!(cell(&json!("x")), "x");
    }

    #[test]
    fn tables_align_columns() {
        let rows = [
            json!({"a": "1", "b": "long value"}),
            json!({"a": "22", "b": "x"}),
        ];
        let text = rows_table(&rows, &[("A", "a"), ("B", "b")]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let col = |l: &str| l.find(['B', 'l', 'x']).unwrap();
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
    }
}
