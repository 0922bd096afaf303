//! Names people give to tenants, projects, keys and jobs.

use thiserror::Error;

/// The longest name accepted, as for a DNS label.
pub const MAX_NAME_LEN: usize = 63;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is {len} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong { len: usize },
    #[error("contains {found:?} at position {position}; use lowercase letters, digits and '-'")]
    BadCharacter { found: char, position: usize },
    #[error("must start and end with a letter or a digit")]
    BadEdge,
}

/// Checks that `name` is a DNS-label-like name: 1 to 63 of `[a-z0-9-]`, not starting or ending
/// with '-'. Such names are safe in URLs, file names, metric labels and log lines.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong { len });
    }
    if let Some((position, found)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::BadCharacter { found, position });
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameError::BadEdge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_refuses() {
        assert_eq!(validate_name("acme-research"), Ok(()));
        assert_eq!(validate_name("a"), Ok(()));
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name("-a"), Err(NameError::BadEdge));
        assert_eq!(
            validate_name("Acme"),
            Err(NameError::BadCharacter {
                found: 'A',
                position: 0
            })
        );
        assert_eq!(
            validate_name(&"a".repeat(64)),
            Err(NameError::TooLong { len: 64 })
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_accepted_names_are_safe(s in "\\PC{0,80}") {
            if validate_name(&s).is_ok() {
                prop_assert!(s.len() <= MAX_NAME_LEN);
                prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }
}
