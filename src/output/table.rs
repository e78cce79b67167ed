//! The table: aligned columns for a person, printed at the end (widths
//! depend on every row), sorted, with an optional footer.

use std::io::{self, Write};

use super::{Printable, Sink, sort};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// As wide as the widest cell or the title.
    Fit,
    /// At least this many characters; a longer cell widens its line only.
    AtLeast(usize),
}

/// One column of a table. The last column is never padded.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub title: &'static str,
    pub align: Align,
    pub width: Width,
    /// Spaces after the column.
    pub gap: usize,
}

impl Column {
    /// Left-aligned, as wide as its widest cell, two spaces after.
    pub const fn fit(title: &'static str) -> Column {
        Column {
            title,
            align: Align::Left,
            width: Width::Fit,
            gap: 2,
        }
    }
}

/// The lines of a table: titles, then one line per row of cells.
pub fn lines(columns: &[Column], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| match c.width {
            Width::AtLeast(n) => n,
            Width::Fit => rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.chars().count())
                .fold(c.title.chars().count(), usize::max),
        })
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, (col, &w))) in cells.iter().zip(columns.iter().zip(&widths)).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
                continue;
            }
            match col.align {
                Align::Left => s.push_str(&format!("{cell:<w$}")),
                Align::Right => s.push_str(&format!("{cell:>w$}")),
            }
            s.push_str(&" ".repeat(col.gap));
        }
        s.trim_end().to_string()
    };
    let titles: Vec<String> = columns.iter().map(|c| c.title.to_string()).collect();
    std::iter::once(line(&titles))
        .chain(rows.iter().map(|r| line(r)))
        .collect()
}

pub(super) struct Table<W, R> {
    w: W,
    rows: Vec<R>,
}

impl<W, R> Table<W, R> {
    pub fn new(w: W) -> Self {
        Table { w, rows: Vec::new() }
    }
}

impl<W: Write, R: Printable> Sink<R> for Table<W, R> {
    fn record(&mut self, r: &R) -> io::Result<()> {
        self.rows.push(r.clone());
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        sort(&mut self.rows);
        let cells: Vec<Vec<String>> = self.rows.iter().map(R::table_row).collect();
        for line in lines(R::TABLE, &cells) {
            writeln!(self.w, "{line}")?;
        }
        if let Some(footer) = R::table_footer(&self.rows) {
            writeln!(self.w, "{footer}")?;
        }
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_or_keep_a_width_and_the_last_is_never_padded() {
        let columns = [
            Column {
                title: "A",
                align: Align::Left,
                width: Width::AtLeast(4),
                gap: 1,
            },
            Column {
                title: "N",
                align: Align::Right,
                width: Width::Fit,
                gap: 2,
            },
            Column::fit("LAST"),
        ];
        let rows = vec![
            vec!["x".to_string(), "100".to_string(), "end".to_string()],
            vec!["longer".to_string(), "7".to_string(), String::new()],
        ];
        assert_eq!(
            lines(&columns, &rows),
            vec!["A      N  LAST", "x    100  end", "longer   7"]
        );
    }
}
