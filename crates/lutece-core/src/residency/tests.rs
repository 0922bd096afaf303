use super::*;
use proptest::prelude::*;
use serde::de::IntoDeserializer;

fn policy(entries: &[&str]) -> ResidencyPolicy {
    ResidencyPolicy::parse(entries).unwrap()
}

fn country(code: &str) -> Jurisdiction {
    Jurisdiction::parse(code).unwrap()
}

#[test]
fn jurisdictions_are_assigned_country_codes_in_either_case() {
    assert_eq!(country("fr").as_str(), "FR");
    assert_eq!(country("De").to_string(), "DE");
    assert_eq!("us".parse::<Jurisdiction>(), Ok(country("US")));
    for refused in ["", "F", "FRA", "F1", "XX", "EU", "EL", "XK", "é1", "ＦＲ"] {
        assert_eq!(
            Jurisdiction::parse(refused),
            Err(ResidencyError::Jurisdiction(refused.to_owned())),
            "{refused}"
        );
    }
    assert_eq!(
        Jurisdiction::parse("xx1").unwrap_err().to_string(),
        "`xx1` is not a country code (two letters, such as FR)"
    );
}

#[test]
fn the_tables_hold_what_they_say() {
    assert!(
        COUNTRIES.windows(2).all(|w| w[0] < w[1]),
        "sorted, each once"
    );
    assert!(
        COUNTRIES
            .iter()
            .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
    );
    let mut members = EU_MEMBERS.to_vec();
    members.dedup();
    assert_eq!(members.len(), 27);
    assert!(EU_MEMBERS.iter().all(|m| COUNTRIES.contains(m)));
    assert!(country("GR").is_eu() && country("fr").is_eu() && country("IE").is_eu());
    for outside in ["GB", "CH", "NO", "US", "IS"] {
        assert!(!country(outside).is_eu(), "{outside}");
    }
}

#[test]
fn a_policy_allows_its_countries_and_the_eu_its_members() {
    let fr_de = policy(&["fr", "DE", "FR"]);
    assert_eq!(fr_de.allowed(), ["FR", "DE"]);
    assert!(fr_de.allows(&country("FR")) && fr_de.allows(&country("DE")));
    assert!(!fr_de.allows(&country("IT")) && !fr_de.allows(&country("US")));
    assert_eq!(fr_de.expand(), ["DE", "FR"]);
    assert_eq!(fr_de.describe(), "FR, DE");

    let eu = policy(&["eu"]);
    assert!(eu.allows(&country("IT")) && eu.allows(&country("GR")));
    assert!(!eu.allows(&country("CH")) && !eu.allows(&country("GB")));
    assert_eq!(eu.expand().len(), 27);
    assert_eq!(eu.describe(), "the EU");

    let eu_ch = policy(&["EU", "CH", "FR"]);
    assert!(eu_ch.allows(&country("CH")) && !eu_ch.allows(&country("NO")));
    assert_eq!(eu_ch.expand().len(), 28);
    assert_eq!(eu_ch.describe(), "the EU, CH, FR");

    let anywhere = policy(&[]);
    assert_eq!(anywhere, ResidencyPolicy::anywhere());
    assert!(anywhere.is_anywhere() && anywhere.allows(&country("US")));
    assert!(anywhere.expand().is_empty());
    assert_eq!(anywhere.to_string(), "anywhere");
}

#[test]
fn a_bad_entry_is_named() {
    assert_eq!(
        ResidencyPolicy::parse(["FR", "XX1", "YY"])
            .unwrap_err()
            .to_string(),
        "`XX1` is not a country code (two letters, such as FR) or EU"
    );
    assert_eq!(
        ResidencyPolicy::parse(["EL"]),
        Err(ResidencyError::Entry("EL".to_owned()))
    );
    let long = "A".repeat(1000);
    let message = ResidencyPolicy::parse([long]).unwrap_err().to_string();
    assert!(message.len() < 120, "{message}");
}

#[test]
fn serde_reads_and_checks_a_plain_list() {
    let read = |entries: Vec<&str>| {
        let entries: Vec<String> = entries.into_iter().map(str::to_owned).collect();
        let deserializer: serde::de::value::SeqDeserializer<_, serde::de::value::Error> =
            entries.into_deserializer();
        ResidencyPolicy::deserialize(deserializer)
    };
    assert_eq!(read(vec!["eu", "ch"]).unwrap(), policy(&["EU", "CH"]));
    assert!(
        read(vec!["FR", "France"])
            .unwrap_err()
            .to_string()
            .contains("`France`")
    );
    assert_eq!(Vec::<String>::from(policy(&["de", "eu"])), ["DE", "EU"]);
    let deserializer: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        "fr".into_deserializer();
    assert_eq!(
        Jurisdiction::deserialize(deserializer).unwrap(),
        country("FR")
    );
}

fn entry() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(EU.to_owned()),
        proptest::sample::select(COUNTRIES.to_vec()).prop_map(str::to_owned),
        proptest::sample::select(EU_MEMBERS.to_vec()).prop_map(str::to_lowercase),
    ]
}

proptest! {
    #[test]
    fn allows_is_what_expand_lists(
        entries in proptest::collection::vec(entry(), 1..6),
        code in proptest::sample::select(COUNTRIES.to_vec()),
    ) {
        let policy = ResidencyPolicy::parse(&entries).unwrap();
        let jurisdiction = country(code);
        prop_assert_eq!(
            policy.allows(&jurisdiction),
            policy.expand().iter().any(|c| c == jurisdiction.as_str())
        );
        let expanded = policy.expand();
        prop_assert!(expanded.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn parsing_never_panics(input in "\\PC{0,6}") {
        if let Ok(j) = Jurisdiction::parse(&input) {
            prop_assert!(j.as_str().eq_ignore_ascii_case(&input));
        }
        let _ = ResidencyPolicy::parse([input]);
    }
}
