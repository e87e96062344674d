//! How the page writes numbers, in one place, so every tab writes the same count the same way.

/// A count with thousands grouped by commas: `3672040` → `3,672,040`.
pub fn group_thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, ch) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Rows of fields as CSV text, written by the `csv` crate (which quotes what needs it); the
/// first row is the header.
pub fn csv_text<R, F>(rows: impl IntoIterator<Item = R>) -> String
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail, and the fields are UTF-8 text, so the empty fallback is
    // never taken.
    let mut written = Ok(());
    for row in rows {
        written = written.and_then(|()| writer.write_record(row));
    }
    match (written, writer.into_inner()) {
        (Ok(()), Ok(bytes)) => String::from_utf8(bytes).unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(102_156), "102,156");
        assert_eq!(group_thousands(3_672_040), "3,672,040");
    }
}
