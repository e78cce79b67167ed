//! The Endpoints page's export: the current view, every page of it, as
//! CSV (the columns of `sensor inventory -o csv`, an interface scripts
//! read) or as JSON (the stored endpoints' serde form, as the API gives).

use crate::output::{self, Format, Options};
use crate::store::endpoint::Stored;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export: {0}")]
    Io(#[from] std::io::Error),
    #[error("export: {0}")]
    Json(#[from] serde_json::Error),
}

/// `rows` as CSV, in their order.
pub fn csv(rows: &[&Stored], options: Options) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    {
        let mut sink = output::sink_with::<Stored, _>(
            Format::Csv,
            &mut out,
            None,
            Options {
                sorted: false,
                colour: false,
                ..options
            },
        );
        for r in rows {
            sink.record(r)?;
        }
        sink.finish()?;
    }
    Ok(out)
}

/// `rows` as a JSON array.
pub fn json(rows: &[&Stored]) -> Result<Vec<u8>, ExportError> {
    Ok(serde_json::to_vec_pretty(rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::endpoint;
    use crate::model::record::Category;

    #[test]
    fn csv_has_the_inventory_header_and_one_line_per_row() {
        let a = endpoint("10.0.0.1", 443, Category::Discovered, None, 50);
        let b = endpoint("10.0.0.2", 443, Category::Discovered, None, 50);
        let text = String::from_utf8(csv(&[&b, &a], Options::default()).unwrap_or_default()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("id,sensor,address,port"));
        assert!(lines[1].contains("10.0.0.2"), "in the view's order");
        let j: serde_json::Value = serde_json::from_slice(&json(&[&a]).unwrap_or_default()).unwrap_or_default();
        assert_eq!(j[0]["key"]["address"], "10.0.0.1");
    }
}
