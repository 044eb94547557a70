//! YAML that every reader takes as written, YAML 1.1 ones (PyYAML, and so LiteLLM) as well as
//! YAML 1.2 ones.
//!
//! The two versions read plain scalars differently: to PyYAML `2024-06-01` is a date, `no`
//! and `on` are booleans, `1_000` and `12:30` are integers, `1.5e+3` a float, `=` and `<<`
//! are special keys. serde_norway quotes only what YAML 1.2 would misread, and has no way to
//! ask for more, so this writer double-quotes every string value. Numbers and booleans stay
//! plain, written in a form both versions read as the same number. A mapping key is plain
//! only when it is a lower-case identifier that no version reads as anything but a string.
//!
//! Block style, with sequences at their key's indentation, as serde_norway writes.

use serde_norway::{Mapping, Number, Value};

/// `value` as a YAML document.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Mapping(m) if !m.is_empty() => mapping(&mut out, m, 0, false),
        Value::Sequence(s) if !s.is_empty() => sequence(&mut out, s, 0, false),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// Writes the entries of `m` at `indent`; with `inline`, the first one continues a line that
/// is already started (a sequence item's `- `).
fn mapping(out: &mut String, m: &Mapping, indent: usize, inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !inline {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&key(k));
        out.push(':');
        match v {
            Value::Mapping(inner) if !inner.is_empty() => {
                out.push('\n');
                mapping(out, inner, indent + 2, false);
            }
            Value::Sequence(items) if !items.is_empty() => {
                out.push('\n');
                sequence(out, items, indent, false);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize, inline: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match item {
            Value::Mapping(m) if !m.is_empty() => mapping(out, m, indent + 2, true),
            Value::Sequence(s) if !s.is_empty() => sequence(out, s, indent + 2, true),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// Keys that YAML 1.1 reads as a boolean or null although they look like identifiers.
const IDENTIFIER_TRAPS: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

fn key(k: &Value) -> String {
    match k {
        Value::String(s)
            if s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !IDENTIFIER_TRAPS.contains(&s.as_str()) =>
        {
            s.clone()
        }
        other => scalar(other),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quoted(s),
        Value::Sequence(_) => "[]".into(),
        Value::Mapping(_) => "{}".into(),
        Value::Tagged(t) => format!("{} {}", t.tag, scalar(&t.value)),
    }
}

/// Integers as digits. Floats with a `.` and without an exponent: PyYAML reads `1e-05` as a
/// string and `30` as an integer, but `0.00001` and `30.0` as the floats they are.
fn number(n: &Number) -> String {
    if n.is_f64() {
        let x = n.as_f64().unwrap_or_default();
        if !x.is_finite() {
            // Not a value of any model field; written as YAML's own spelling.
            return if x.is_nan() {
                ".nan".into()
            } else if x > 0.0 {
                ".inf".into()
            } else {
                "-.inf".into()
            };
        }
        let s = x.to_string();
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        n.to_string()
    }
}

/// A double-quoted scalar. Escaped: the quote and backslash, every control character, and the
/// characters that YAML 1.1 folds as line breaks (NEL, LS, PS) or may drop (the BOM).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn strings_are_quoted_numbers_and_booleans_are_not() {
        let doc = yaml(
            r#"
model_list:
  - model_name: "no"
    litellm_params:
      api_version: "2024-06-01"
      tags: ["on", "1_000", "12:30", "0755", "=", "<<"]
      rpm: 600
      timeout: 30.0
      temperature: 0.00001
    model_info:
      deprecated: true
      "on": "x"
      "2": "y"
      Upper: "z"
      empty: []
"#,
        );
        assert_eq!(
            to_string(&doc),
            r#"model_list:
- model_name: "no"
  litellm_params:
    api_version: "2024-06-01"
    tags:
    - "on"
    - "1_000"
    - "12:30"
    - "0755"
    - "="
    - "<<"
    rpm: 600
    timeout: 30.0
    temperature: 0.00001
  model_info:
    deprecated: true
    "on": "x"
    "2": "y"
    "Upper": "z"
    empty: []
"#
        );
    }

    #[test]
    fn every_string_reads_back_as_written() {
        let strings = [
            "",
            " lead and trail ",
            "line one\nkey: value # not a comment\n",
            "tab\there, \"quotes\", back\\slash",
            "bell\u{7} del\u{7f} nel\u{85} ls\u{2028} ps\u{2029} bom\u{feff}",
            "é ü 中文 🦀",
            "- item",
            "? key",
            "&anchor *alias !tag %directive @at `tick",
        ];
        let mut m = Mapping::new();
        for (i, s) in strings.iter().enumerate() {
            m.insert(format!("k{i}").into(), (*s).into());
        }
        let doc = Value::Mapping(m);
        let text = to_string(&doc);
        assert_eq!(yaml(&text), doc, "{text}");
        for line in text.lines() {
            assert!(
                line.chars()
                    .all(|c| !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')),
                "only printable characters are written raw: {line:?}"
            );
        }
    }

    #[test]
    fn floats_keep_a_point_and_no_exponent() {
        for (x, want) in [
            (30.0, "30.0"),
            (0.2, "0.2"),
            (1e-5, "0.00001"),
            (86400.0, "86400.0"),
            (1e21, "1000000000000000000000.0"),
            (-0.5, "-0.5"),
        ] {
            assert_eq!(number(&Number::from(x)), want);
        }
        assert_eq!(number(&Number::from(120000_i64)), "120000");
    }
}
