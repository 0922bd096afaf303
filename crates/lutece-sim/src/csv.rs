//! A small reader for the traces' plain CSV (a header line, comma-separated fields, no quoting),
//! with errors that name the line and the column.

use std::io::BufRead;

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("failed to read line {line}: {source}")]
    Io { line: usize, source: std::io::Error },
    #[error("the trace is empty: no header line")]
    Empty,
    #[error("line 1: no column `{column}` in the header")]
    MissingColumn { column: String },
    #[error("line {line}, column `{column}`: {message}")]
    Field {
        line: usize,
        column: String,
        message: String,
    },
    #[error("line {line}: {found} fields where the header has {expected}")]
    Width {
        line: usize,
        expected: usize,
        found: usize,
    },
}

/// One data row, with access by column name.
pub(crate) struct Row<'a> {
    pub(crate) line: usize,
    fields: Vec<&'a str>,
    columns: &'a [(String, usize)],
}

impl Row<'_> {
    /// The raw text of `column` (which must be one of the requested columns).
    pub(crate) fn text(&self, column: &str) -> &str {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .and_then(|(_, at)| self.fields.get(*at))
            .map_or("", |f| f.trim())
    }

    /// `column` parsed as `T`.
    pub(crate) fn parse<T: std::str::FromStr>(&self, column: &str) -> Result<T, TraceError>
    where
        T::Err: std::fmt::Display,
    {
        let text = self.text(column);
        text.parse()
            .map_err(|e: T::Err| self.error(column, format!("`{text}` is not valid: {e}")))
    }

    pub(crate) fn error(&self, column: &str, message: String) -> TraceError {
        TraceError::Field {
            line: self.line,
            column: column.to_owned(),
            message,
        }
    }
}

/// Reads every data row of `reader`, requiring the `required` columns (in any order), and
/// converts each with `convert`. Blank lines are skipped.
pub(crate) fn read<R: BufRead, T>(
    reader: R,
    required: &[&str],
    optional: &[&str],
    mut convert: impl FnMut(&Row<'_>) -> Result<T, TraceError>,
) -> Result<Vec<T>, TraceError> {
    let mut lines = reader.lines().enumerate();
    let header = match lines.next() {
        Some((_, Ok(header))) => header,
        Some((_, Err(source))) => return Err(TraceError::Io { line: 1, source }),
        None => return Err(TraceError::Empty),
    };
    let names: Vec<&str> = header
        .trim_start_matches('\u{feff}')
        .trim()
        .split(',')
        .map(str::trim)
        .collect();
    let mut columns = Vec::new();
    for &column in required.iter().chain(optional) {
        match names.iter().position(|n| *n == column) {
            Some(at) => columns.push((column.to_owned(), at)),
            None if optional.contains(&column) => {}
            None => {
                return Err(TraceError::MissingColumn {
                    column: column.to_owned(),
                });
            }
        }
    }
    let mut out = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let line = line.map_err(|source| TraceError::Io {
            line: number,
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
        if fields.len() != names.len() {
            return Err(TraceError::Width {
                line: number,
                expected: names.len(),
                found: fields.len(),
            });
        }
        out.push(convert(&Row {
            line: number,
            fields,
            columns: &columns,
        })?);
    }
    Ok(out)
}
