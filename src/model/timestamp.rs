//! The one time format of records, reports and logs, so that times compare
//! as strings across sensors and a reader needs one parser.

/// RFC 3339 UTC with second precision, the one time format of the records.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt).unwrap_or_else(|_| t.unix_timestamp().to_string())
}
