//! Output formats and a kubectl-like column printer.

use clap::ValueEnum;
use serde_json::Value;

/// `-o` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human table (the default).
    #[default]
    Table,
    /// Table with more columns.
    Wide,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Renders rows under upper-case headers, columns separated by three spaces, no trailing
/// blanks. `<none>` stands in for empty cells, as kubectl does.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    let cell = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < width.len() {
                width[i] = width[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}   ", w = width[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
    out
}

/// JSON (pretty) or YAML text of a value.
pub fn structured(v: &Value, format: Format) -> String {
    match format {
        Format::Yaml => serde_yaml_ng::to_string(v).unwrap_or_default(),
        _ => format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

/// A JSON field as display text: strings bare, arrays comma-joined, null empty.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_empty_cells_show_none() {
        let t = table(
            &["NAME", "CIDR", "PHASE"],
            &[
                vec!["blue".into(), "10.0.0.0/16".into(), "Ready".into()],
                vec!["a-long-name".into(), String::new(), "Pending".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME          CIDR          PHASE\n\
             blue          10.0.0.0/16   Ready\n\
             a-long-name   <none>        Pending\n"
        );
    }

    #[test]
    fn text_joins_lists() {
        assert_eq!(text(&serde_json::json!(["d1", "d2"])), "d1,d2");
        assert_eq!(text(&serde_json::json!(7)), "7");
        assert_eq!(text(&Value::Null), "");
    }
}
