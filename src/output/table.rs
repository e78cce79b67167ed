//! The table: aligned columns for a person, printed at the end (widths
//! depend on every row), sorted, with an optional footer; coloured when
//! asked (the widths count the text, never the colour codes).

use std::io::{self, Write};

use super::{Options, Printable, Sink, Style, sort};

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

/// The lines of a table: titles, then one line per row of cells, each
/// painted in its style (`styles[row][column]`, plain where missing);
/// titles stay plain.
pub fn styled_lines(columns: &[Column], rows: &[Vec<String>], styles: &[Vec<Style>]) -> Vec<String> {
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
    let line = |cells: &[String], styles: &[Style]| {
        let mut s = String::new();
        for (i, (cell, (col, &w))) in cells.iter().zip(columns.iter().zip(&widths)).enumerate() {
            let style = styles.get(i).copied().unwrap_or_default();
            if i + 1 == cells.len() {
                if !cell.is_empty() {
                    s.push_str(&style.paint(cell));
                }
                continue;
            }
            let padded = match col.align {
                Align::Left => format!("{cell:<w$}"),
                Align::Right => format!("{cell:>w$}"),
            };
            if style == Style::Plain || cell.is_empty() {
                s.push_str(&padded);
            } else {
                // Paint the text, not the padding.
                let pad = padded.chars().count() - cell.chars().count();
                let painted = style.paint(cell);
                match col.align {
                    Align::Left => s.push_str(&format!("{painted}{}", " ".repeat(pad))),
                    Align::Right => s.push_str(&format!("{}{painted}", " ".repeat(pad))),
                }
            }
            s.push_str(&" ".repeat(col.gap));
        }
        s.trim_end().to_string()
    };
    let titles: Vec<String> = columns.iter().map(|c| c.title.to_string()).collect();
    std::iter::once(line(&titles, &[]))
        .chain(
            rows.iter()
                .enumerate()
                .map(|(i, r)| line(r, styles.get(i).map_or(&[][..], Vec::as_slice))),
        )
        .collect()
}

pub(super) struct Table<W, R> {
    w: W,
    rows: Vec<R>,
    options: Options,
}

impl<W, R> Table<W, R> {
    pub fn new(w: W, options: Options) -> Self {
        Table {
            w,
            rows: Vec::new(),
            options,
        }
    }
}

impl<W: Write, R: Printable> Sink<R> for Table<W, R> {
    fn record(&mut self, r: &R) -> io::Result<()> {
        self.rows.push(r.clone());
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        sort(&mut self.rows);
        let cx = &self.options.context;
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.table_row(cx)).collect();
        let styles: Vec<Vec<Style>> = if self.options.colour {
            self.rows.iter().map(|r| r.table_styles(cx)).collect()
        } else {
            Vec::new()
        };
        for line in styled_lines(R::TABLE, &cells, &styles) {
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
            styled_lines(&columns, &rows, &[]),
            vec!["A      N  LAST", "x    100  end", "longer   7"]
        );
    }

    #[test]
    fn colour_paints_the_text_not_the_padding() {
        let columns = [Column::fit("GRADE"), Column::fit("N")];
        let rows = vec![vec!["A".to_string(), "1".to_string()]];
        let styles = vec![vec![Style::Good, Style::Bad]];
        assert_eq!(
            styled_lines(&columns, &rows, &styles),
            vec![
                "GRADE  N".to_string(),
                "\x1b[32mA\x1b[0m      \x1b[31m1\x1b[0m".to_string()
            ]
        );
    }
}
