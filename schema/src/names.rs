//! Name rules (SPEC section 1, SpiceDB's rules).

/// Whether `name` is a valid relation or permission name: `[a-z][a-z0-9_]{1,62}[a-z0-9]`.
///
/// ```
/// assert!(pemba_schema::is_valid_member_name("can_view"));
/// assert!(!pemba_schema::is_valid_member_name("ab"));
/// assert!(!pemba_schema::is_valid_member_name("viewer_"));
/// ```
pub fn is_valid_member_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    (3..=64).contains(&bytes.len())
        && first.is_ascii_lowercase()
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `name` is a valid object type name: parts of the member-name form separated
/// by `/` (`document`, `tenant/document`).
///
/// ```
/// assert!(pemba_schema::is_valid_type_name("org/team/user"));
/// assert!(!pemba_schema::is_valid_type_name("org//user"));
/// assert!(!pemba_schema::is_valid_type_name("User"));
/// ```
pub fn is_valid_type_name(name: &str) -> bool {
    name.split('/').all(is_valid_member_name)
}
