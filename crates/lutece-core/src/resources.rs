//! What a task asks of a node, and the parsers for the quantities people type ("1.5", "512Mi").

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Resources of one task, or free on one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub cpus_milli: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Whole GPUs.
    pub gpus: u32,
}

impl Resources {
    /// Whether `self` fits inside `available` in every dimension.
    pub fn fits_in(&self, available: &Resources) -> bool {
        self.cpus_milli <= available.cpus_milli
            && self.memory_bytes <= available.memory_bytes
            && self.gpus <= available.gpus
    }

    pub fn saturating_sub(&self, other: &Resources) -> Resources {
        Resources {
            cpus_milli: self.cpus_milli.saturating_sub(other.cpus_milli),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            gpus: self.gpus.saturating_sub(other.gpus),
        }
    }

    pub fn saturating_add(&self, other: &Resources) -> Resources {
        Resources {
            cpus_milli: self.cpus_milli.saturating_add(other.cpus_milli),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            gpus: self.gpus.saturating_add(other.gpus),
        }
    }
}

/// Why a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResourceError {
    #[error("{input:?} is not a quantity; {expected}")]
    Malformed {
        input: String,
        expected: &'static str,
    },
    #[error("{input:?} is too large; the limit is {limit}")]
    TooLarge { input: String, limit: String },
}

const CPU_EXPECTED: &str = "expected cores such as \"2\", \"0.5\" or \"500m\"";
const MEMORY_EXPECTED: &str = "expected bytes such as \"512Mi\", \"2Gi\", \"1G\" or \"1048576\"";

/// Parses CPU cores as people write them: `"2"`, `"0.5"`, `"500m"` (millicores).
/// Returns thousandths of a core.
pub fn parse_cpus(input: &str) -> Result<u64, ResourceError> {
    let malformed = || ResourceError::Malformed {
        input: input.to_owned(),
        expected: CPU_EXPECTED,
    };
    let s = input.trim();
    let milli = if let Some(m) = s.strip_suffix('m') {
        parse_digits(m).ok_or_else(malformed)?
    } else {
        parse_decimal_scaled(s, 1000).ok_or_else(malformed)?
    };
    if milli > crate::limits::MAX_CPUS_MILLI {
        return Err(ResourceError::TooLarge {
            input: input.to_owned(),
            limit: format!("{} cores", crate::limits::MAX_CPUS_MILLI / 1000),
        });
    }
    Ok(milli)
}

/// Parses memory as people write it: plain bytes, SI (`k`, `M`, `G`, `T`) or binary (`Ki`,
/// `Mi`, `Gi`, `Ti`) suffixes, optionally followed by `B`, with a decimal part (`"1.5Gi"`).
pub fn parse_memory(input: &str) -> Result<u64, ResourceError> {
    let malformed = || ResourceError::Malformed {
        input: input.to_owned(),
        expected: MEMORY_EXPECTED,
    };
    let s = input.trim();
    let s = s.strip_suffix('B').unwrap_or(s);
    const UNITS: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, scale) = UNITS
        .iter()
        .find_map(|(suffix, scale)| s.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((s, 1));
    let bytes = parse_decimal_scaled(number, scale).ok_or_else(malformed)?;
    if bytes > crate::limits::MAX_MEMORY_BYTES {
        return Err(ResourceError::TooLarge {
            input: input.to_owned(),
            limit: "64Ti".to_owned(),
        });
    }
    Ok(bytes)
}

/// `"123"` → 123; anything else (sign, space, empty, overflow) → None.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a non-negative decimal such as `"1.25"` and multiplies it by `scale`, exactly, in
/// integers. A fractional remainder below one unit is rounded down.
fn parse_decimal_scaled(s: &str, scale: u64) -> Option<u64> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole_value = if whole.is_empty() {
        0
    } else {
        parse_digits(whole)?
    };
    let mut total = whole_value.checked_mul(scale)?;
    if s.contains('.') {
        if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac_value: u64 = frac.parse().ok()?;
        let denominator = 10u64.pow(frac.len() as u32);
        let part = (u128::from(frac_value) * u128::from(scale)) / u128::from(denominator);
        total = total.checked_add(u64::try_from(part).ok()?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1"), Ok(1000));
        assert_eq!(parse_cpus("0.5"), Ok(500));
        assert_eq!(parse_cpus(".25"), Ok(250));
        assert_eq!(parse_cpus("250m"), Ok(250));
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("1.").is_err());
        assert!(parse_cpus("one").is_err());
        assert!(matches!(
            parse_cpus("100000"),
            Err(ResourceError::TooLarge { .. })
        ));
    }

    #[test]
    fn memory() {
        assert_eq!(parse_memory("512Mi"), Ok(512 << 20));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory("2G"), Ok(2_000_000_000));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert_eq!(parse_memory("1GiB"), Ok(1 << 30));
        assert!(parse_memory("Mi").is_err());
        assert!(parse_memory("12 apples").is_err());
        assert!(matches!(
            parse_memory("999999Ti"),
            Err(ResourceError::TooLarge { .. })
        ));
        assert!(parse_memory("99999999999999999999999").is_err());
    }

    #[test]
    fn fits() {
        let node = Resources {
            cpus_milli: 4000,
            memory_bytes: 1 << 30,
            gpus: 2,
        };
        let task = Resources {
            cpus_milli: 1000,
            memory_bytes: 1 << 29,
            gpus: 2,
        };
        assert!(task.fits_in(&node));
        assert!(!Resources { gpus: 3, ..task }.fits_in(&node));
        assert_eq!(node.saturating_sub(&task).saturating_add(&task), node);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_cpus(&s);
            let _ = parse_memory(&s);
        }

        #[test]
        fn whole_mebibytes_round_trip(n in 0u64..1_000_000) {
            prop_assert_eq!(parse_memory(&format!("{n}Mi")), Ok(n << 20));
        }

        #[test]
        fn millicores_round_trip(n in 0u64..16_384_000) {
            prop_assert_eq!(parse_cpus(&format!("{n}m")), Ok(n));
        }
    }
}
