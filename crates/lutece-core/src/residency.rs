//! Where tenant data and work may be: jurisdictions (ISO 3166-1 country codes) and residency
//! policies (a list of countries, or the EU as a whole).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use thiserror::Error;

/// The entry of a policy that stands for every member state of the European Union.
pub const EU: &str = "EU";

/// How much of a refused entry an error repeats, so that a huge input makes a short message.
const SHOWN: usize = 32;

/// A country, by its ISO 3166-1 alpha-2 code (`FR`, `US`): where a storage location or a node
/// is. Only officially assigned codes are accepted (Greece is `GR`, not `EL`; `EU` and `XK` are
/// not countries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Jurisdiction(&'static str);

/// Where a tenant's data and work may be: country codes, or [`EU`] for any member state of the
/// European Union. Empty: anywhere.
///
/// The list is private so that every policy in hand has been validated by [`Self::parse`]; it
/// serializes as the plain list of its entries (uppercase, each once, in the order given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct ResidencyPolicy {
    allowed: Vec<String>,
}

/// Why a jurisdiction or a policy entry was refused; names the refused text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResidencyError {
    #[error("`{0}` is not a country code (two letters, such as FR)")]
    Jurisdiction(String),
    #[error("`{0}` is not a country code (two letters, such as FR) or EU")]
    Entry(String),
}

impl Jurisdiction {
    /// Reads a country code, in either case (`fr` is `FR`).
    pub fn parse(code: &str) -> Result<Jurisdiction, ResidencyError> {
        lookup(code)
            .map(Jurisdiction)
            .ok_or_else(|| ResidencyError::Jurisdiction(shown(code)))
    }

    /// The code, uppercase.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// Whether the country is one of the 27 member states of the European Union.
    pub fn is_eu(&self) -> bool {
        EU_MEMBERS.contains(&self.0)
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::str::FromStr for Jurisdiction {
    type Err = ResidencyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Jurisdiction::parse(code)
    }
}

impl TryFrom<String> for Jurisdiction {
    type Error = ResidencyError;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Jurisdiction::parse(&code)
    }
}

impl From<Jurisdiction> for String {
    fn from(jurisdiction: Jurisdiction) -> String {
        jurisdiction.0.to_owned()
    }
}

impl ResidencyPolicy {
    /// The policy that allows anywhere.
    pub fn anywhere() -> ResidencyPolicy {
        ResidencyPolicy::default()
    }

    /// Reads a policy from its entries (country codes or `EU`, in either case); an entry given
    /// twice counts once. Fails on the first entry that is neither.
    pub fn parse<I, S>(entries: I) -> Result<ResidencyPolicy, ResidencyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed: Vec<String> = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            let normal = if entry.eq_ignore_ascii_case(EU) {
                EU
            } else {
                lookup(entry).ok_or_else(|| ResidencyError::Entry(shown(entry)))?
            };
            if !allowed.iter().any(|a| a == normal) {
                allowed.push(normal.to_owned());
            }
        }
        Ok(ResidencyPolicy { allowed })
    }

    /// The entries, uppercase, in the order given.
    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    /// Whether the policy allows anywhere (it has no entries).
    pub fn is_anywhere(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Whether data or work may be in `jurisdiction`.
    pub fn allows(&self, jurisdiction: &Jurisdiction) -> bool {
        self.is_anywhere()
            || self.allowed.iter().any(|entry| {
                entry == jurisdiction.as_str() || (entry == EU && jurisdiction.is_eu())
            })
    }

    /// The country codes the policy allows, with `EU` expanded to its members, sorted, each
    /// once (what the scheduler matches node jurisdictions against). Empty for anywhere.
    pub fn expand(&self) -> Vec<String> {
        let mut codes = BTreeSet::new();
        for entry in &self.allowed {
            if entry == EU {
                codes.extend(EU_MEMBERS.iter().copied());
            } else {
                codes.insert(entry.as_str());
            }
        }
        codes.into_iter().map(str::to_owned).collect()
    }

    /// The policy in words, to end a sentence such as "tenant data may be stored only in …":
    /// `FR, DE`, `the EU`, `the EU, CH`; `anywhere` when empty.
    pub fn describe(&self) -> String {
        if self.is_anywhere() {
            return "anywhere".to_owned();
        }
        let words: Vec<&str> = self
            .allowed
            .iter()
            .map(|entry| if entry == EU { "the EU" } else { entry })
            .collect();
        words.join(", ")
    }
}

impl fmt::Display for ResidencyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl TryFrom<Vec<String>> for ResidencyPolicy {
    type Error = ResidencyError;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        ResidencyPolicy::parse(entries)
    }
}

impl From<ResidencyPolicy> for Vec<String> {
    fn from(policy: ResidencyPolicy) -> Vec<String> {
        policy.allowed
    }
}

/// The table's own spelling of `code`, if it is an assigned country code in either case.
fn lookup(code: &str) -> Option<&'static str> {
    if code.len() != 2 {
        return None;
    }
    COUNTRIES
        .iter()
        .copied()
        .find(|known| known.eq_ignore_ascii_case(code))
}

/// At most [`SHOWN`] characters of refused input, for an error message.
fn shown(input: &str) -> String {
    match input.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &input[..at]),
        None => input.to_owned(),
    }
}

/// The member states of the European Union (27, since 2020).
const EU_MEMBERS: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The officially assigned ISO 3166-1 alpha-2 codes (249), sorted.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests;
