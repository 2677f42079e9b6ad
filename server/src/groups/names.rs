//! Group names and descriptions: what a valid one is, the form names are compared in, and
//! the order groups are listed in.

use super::error::Invalid;

/// The longest group name, in Unicode characters after trimming (SPEC 6.2).
pub const MAX_NAME_CHARS: usize = 50;

/// The longest group description, in Unicode characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// A group name checked: required, 1 to [`MAX_NAME_CHARS`] characters after trimming, no
/// control characters. Returns it trimmed.
pub fn valid_name(name: Option<&str>) -> Result<String, Invalid> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(Invalid::NameRequired);
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(Invalid::NameTooLong {
            name: name.to_string(),
            chars,
        });
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid::NameControl);
    }
    Ok(name.to_string())
}

/// A description checked (at most [`MAX_DESCRIPTION_CHARS`] characters), trimmed.
pub fn valid_description(description: Option<&str>) -> Result<String, Invalid> {
    let description = description.map(str::trim).unwrap_or_default();
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(Invalid::DescriptionTooLong { chars });
    }
    Ok(description.to_string())
}

/// The form names are compared in: trimmed and lowercased. Two names with one folded form
/// cannot coexist in a workspace.
pub fn fold(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Sorts by name ignoring case, then by name and id, so equal-looking names keep a stable
/// order.
pub(crate) fn sort_by_name<T>(items: &mut [T], key: impl Fn(&T) -> (&str, &str)) {
    items.sort_by(|a, b| {
        let (a_name, a_id) = key(a);
        let (b_name, b_id) = key(b);
        (a_name.to_lowercase(), a_name, a_id).cmp(&(b_name.to_lowercase(), b_name, b_id))
    });
}
