//! How the client prints: aligned tables that fit the terminal, or the raw data as JSON or
//! YAML.

use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};
use serde_json::Value;

use super::{ClientError, Result};

/// `-o`: the output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table that fits the terminal.
    #[default]
    Table,
    /// The server's JSON.
    Json,
    /// The server's data as YAML.
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

/// The terminal's width: `COLUMNS` when set (as shells and tests do), else the terminal's
/// own; none when stdout is not a terminal (then nothing is wrapped).
fn width() -> Option<u16> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w >= 20)
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(|h| h.to_string()));
    if let Some(w) = width() {
        t.set_width(w);
    }
    t
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
    // The key and the short enums stay whole; names, model strings and tags wrap.
    for i in [0, 3, 4, 5] {
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    trim_lines(&t.to_string())
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
    if let Some(c) = t.column_mut(0) {
        c.set_constraint(ColumnConstraint::ContentWidth);
    }
    trim_lines(&t.to_string())
}

/// Rows of any objects, with the given columns.
pub fn rows_table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let mut t = table(&headers);
    for r in rows {
        t.add_row(columns.iter().map(|(_, k)| cell(&r[*k])));
    }
    // Only the last column wraps.
    for i in 0..columns.len().saturating_sub(1) {
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    trim_lines(&t.to_string())
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
