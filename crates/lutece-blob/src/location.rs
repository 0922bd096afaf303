//! Named storage locations, each in one jurisdiction, and the spec they are written in.

use crate::BlobError;
use lutece_core::residency::Jurisdiction;
use std::path::{Path, PathBuf};

/// The name [`Locations::local`] gives its one location.
pub const LOCAL: &str = "local";

/// A place objects are stored: a name tenants and operators see, the country it is in, and the
/// store's URL (`file:///abs/dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub name: String,
    pub jurisdiction: Jurisdiction,
    pub url: String,
}

/// The storage locations an installation has, in the order given (the first is the default),
/// with distinct names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations(Vec<Location>);

impl Location {
    /// The absolute directory of a `file://` location.
    pub(crate) fn local_dir(&self) -> Result<PathBuf, BlobError> {
        local_dir(&self.url).map_err(|reason| {
            BlobError::BadLocation(format!("{}: `{}` {reason}", self.name, self.url))
        })
    }
}

impl Locations {
    /// Reads a spec: comma-separated `NAME=URL@COUNTRY` entries, such as
    /// `local=file:///srv/blobs@FR,us-east=file:///mnt/us@US`. Names are DNS-label-like
    /// (`validate_name`); URLs are `file://` and an absolute path (taken as written, not
    /// percent-decoded); countries are ISO 3166-1 codes.
    pub fn parse(spec: &str) -> Result<Locations, BlobError> {
        let mut locations: Vec<Location> = Vec::new();
        for entry in spec.split(',').map(str::trim) {
            let location = parse_entry(entry)
                .map_err(|reason| BlobError::BadLocation(format!("`{entry}`: {reason}")))?;
            if locations.iter().any(|l| l.name == location.name) {
                return Err(BlobError::BadLocation(format!(
                    "`{entry}`: the name {} is given twice",
                    location.name
                )));
            }
            locations.push(location);
        }
        Ok(Locations(locations))
    }

    /// One location named `local` at `dir` (created if missing) in `jurisdiction`: the
    /// default of a single machine.
    pub fn local(
        dir: impl AsRef<Path>,
        jurisdiction: Jurisdiction,
    ) -> Result<Locations, BlobError> {
        let dir = dir.as_ref();
        let dir = create_dir(dir).and_then(|()| {
            std::fs::canonicalize(dir).map_err(|source| BlobError::Io {
                context: format!("resolve {}", dir.display()),
                source,
            })
        })?;
        let path = dir.to_str().ok_or_else(|| {
            BlobError::BadLocation(format!("{LOCAL}: {} is not UTF-8", dir.display()))
        })?;
        Ok(Locations(vec![Location {
            name: LOCAL.to_owned(),
            jurisdiction,
            url: format!("file://{path}"),
        }]))
    }

    /// The location named `name`.
    pub fn get(&self, name: &str) -> Option<&Location> {
        self.0.iter().find(|l| l.name == name)
    }

    /// Every location, the default first.
    pub fn list(&self) -> &[Location] {
        &self.0
    }

    /// The location new data goes to unless another is asked for: the first.
    pub fn default_location(&self) -> &Location {
        // `parse` refuses an empty spec and `local` makes one: never empty.
        &self.0[0]
    }
}

impl std::str::FromStr for Locations {
    type Err = BlobError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        Locations::parse(spec)
    }
}

/// One `NAME=URL@COUNTRY`; the error says which part is wrong.
fn parse_entry(entry: &str) -> Result<Location, String> {
    if entry.is_empty() {
        return Err("is empty; write NAME=URL@COUNTRY, such as local=file:///srv/blobs@FR".into());
    }
    let (name, rest) = entry
        .split_once('=')
        .ok_or("has no `=`; write NAME=URL@COUNTRY, such as local=file:///srv/blobs@FR")?;
    lutece_core::validate_name(name).map_err(|e| format!("the name `{name}` {e}"))?;
    let (url, country) = rest
        .rsplit_once('@')
        .ok_or("has no `@COUNTRY` after its URL, such as @FR")?;
    let jurisdiction = Jurisdiction::parse(country).map_err(|e| e.to_string())?;
    local_dir(url).map_err(|reason| format!("`{url}` {reason}"))?;
    Ok(Location {
        name: name.to_owned(),
        jurisdiction,
        url: url.to_owned(),
    })
}

/// The directory of a `file://` URL; the reason it is not one otherwise.
fn local_dir(url: &str) -> Result<PathBuf, &'static str> {
    if url.starts_with("s3://") {
        return Err("is an S3 location, and this build stores on the local filesystem only");
    }
    let path = url
        .strip_prefix("file://")
        .ok_or("is not a file:// URL (such as file:///srv/blobs)")?;
    if !path.starts_with('/') {
        return Err("does not name an absolute directory (file:///srv/blobs has three slashes)");
    }
    if path.split('/').any(|part| part == "..") {
        return Err("may not contain `..`");
    }
    Ok(PathBuf::from(path))
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), BlobError> {
    std::fs::create_dir_all(dir).map_err(|source| BlobError::Io {
        context: format!("create {}", dir.display()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(spec: &str) -> String {
        Locations::parse(spec).unwrap_err().to_string()
    }

    #[test]
    fn a_spec_names_locations_in_countries() {
        let locations: Locations = "local=file:///srv/blobs@fr, us-east=file:///mnt/us@US"
            .parse()
            .unwrap();
        let names: Vec<&str> = locations.list().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["local", "us-east"]);
        let us = locations.get("us-east").unwrap();
        assert_eq!(us.jurisdiction.as_str(), "US");
        assert_eq!(us.url, "file:///mnt/us");
        assert_eq!(us.local_dir().unwrap(), PathBuf::from("/mnt/us"));
        assert_eq!(locations.default_location().name, "local");
        assert!(locations.get("eu").is_none());
        // The last `@` splits: a directory may hold one.
        let at = Locations::parse("a=file:///x@y@DE").unwrap();
        assert_eq!(at.list()[0].url, "file:///x@y");
    }

    #[test]
    fn a_bad_spec_names_its_bad_part() {
        assert_eq!(
            refusal("local=file:///a@FR,"),
            "storage location ``: is empty; write NAME=URL@COUNTRY, such as local=file:///srv/blobs@FR"
        );
        assert!(refusal("file:///a@FR").contains("`file:///a@FR`: has no `=`"));
        assert!(refusal("Big=file:///a@FR").contains("the name `Big` contains 'B'"));
        assert!(refusal("a=file:///a").contains("has no `@COUNTRY`"));
        assert!(refusal("a=file:///a@XX1").contains("`XX1` is not a country code"));
        assert!(refusal("a=ftp://h/a@FR").contains("`ftp://h/a` is not a file:// URL"));
        assert!(refusal("a=file://rel/a@FR").contains("absolute directory"));
        assert!(refusal("a=file:///a/../b@FR").contains("`..`"));
        assert!(refusal("a=s3://bucket/p@DE").contains("S3 location"));
        assert!(refusal("a=file:///a@FR,a=file:///b@DE").contains("the name a is given twice"));
    }
}
