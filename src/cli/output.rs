//! What the operator commands print: human text by default (aligned tables, or Kafka's
//! own layout where its tools have one), or with `--format json` one JSON document on
//! stdout whose field names are snake_case and stable (the README lists them). Notes
//! (a group with no active members, configs the broker cannot describe) go to stderr in
//! both formats, so stdout stays one parseable document. Errors are never printed here.

use serde::Serialize;
use std::io::Write;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document for programs.
    Json,
}

/// A command's result, printable both ways.
pub trait Report: Serialize {
    /// The human rendering, ending with a newline (or empty).
    fn human(&self) -> String;

    /// Remarks for stderr.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Prints `report` in `format`. A closed stdout (`| head`) is not an error.
pub fn emit(format: Format, report: &impl Report) {
    let text = match format {
        Format::Table => report.human(),
        Format::Json => {
            let mut json = serde_json::to_string_pretty(report)
                .expect("reports are plain data and always serialize");
            json.push('\n');
            json
        }
    };
    let mut stderr = std::io::stderr().lock();
    for note in report.notes() {
        let _ = writeln!(stderr, "{note}");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// A table with a header line and columns padded to their widest cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Spaces between columns.
const GAP: usize = 2;

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; it must have one cell per header.
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.headers.len(),
            "a row of {} cells in a table of {} columns",
            cells.len(),
            self.headers.len()
        );
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let width = |cell: &String| cell.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(width).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                text.push_str(cell);
                if i + 1 < line.len() {
                    let pad = widths[i] - width(cell) + GAP;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A cell for a value that may be missing: Kafka's tools print `-`.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell_and_lines_have_no_trailing_spaces() {
        let mut table = Table::new(&["GROUP", "TOPIC", "PARTITION", "LAG"]);
        table.row(vec![
            "g".into(),
            "a-long-topic".into(),
            "0".into(),
            "5".into(),
        ]);
        table.row(vec!["group-2".into(), "t".into(), "11".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "GROUP    TOPIC         PARTITION  LAG\n\
             g        a-long-topic  0          5\n\
             group-2  t             11         -\n"
        );
    }

    #[test]
    fn an_empty_last_column_leaves_no_trailing_spaces() {
        let mut table = Table::new(&["A", "B"]);
        table.row(vec!["x".into(), String::new()]);
        assert_eq!(table.render(), "A  B\nx\n");
    }

    #[test]
    fn missing_values_are_dashes() {
        assert_eq!(or_dash(Some(3)), "3");
        assert_eq!(or_dash(None::<i64>), "-");
    }
}
