//! Identifiers (case ids, event ids, ticket ids, ...) appear in storage keys,
//! so their alphabet is closed: 1-64 characters of `[A-Za-z0-9._:-]`. That
//! keeps keys unambiguous (no separator byte can occur in an id) and keeps
//! personal data, which never fits this alphabet by accident, out of them.

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why an id is not acceptable, or `None` when it is.
pub fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("is required".into());
    }
    if id.len() > MAX_ID_LEN {
        return Some(format!(
            "is {} bytes long; at most {MAX_ID_LEN} are allowed",
            id.len()
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Some(format!(
            "contains {c:?}; only A-Z, a-z, 0-9 and . _ : - are allowed"
        ));
    }
    None
}

/// Like [`id_problem`], but an empty value is fine (an optional reference).
pub fn optional_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        None
    } else {
        id_problem(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_closed_alphabet_only() {
        assert!(id_problem("124545").is_none());
        assert!(id_problem("evt-0001:a.b_c").is_none());
        assert!(id_problem("").is_some());
        assert!(id_problem("has space").is_some());
        assert!(id_problem("中文").is_some());
        assert!(id_problem("a\0b").is_some());
        assert!(id_problem(&"x".repeat(65)).is_some());
        assert!(optional_id_problem("").is_none());
    }
}
