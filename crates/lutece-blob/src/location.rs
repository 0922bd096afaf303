//! Named storage locations, each in one jurisdiction, and the spec they are written in.

use crate::BlobError;
use lutece_core::residency::Jurisdiction;
use std::path::{Path, PathBuf};

const EXAMPLE: &str = "local=file:///srv/blobs@FR or paris=s3://bucket/prefix@FR";

/// The name [`Locations::local`] gives its one location.
pub const LOCAL: &str = "local";

/// A place objects are stored: a name tenants and operators see, the country it is in, and the
/// store's URL (`file:///abs/dir`, or `s3://bucket/prefix` and its options: see
/// [`Locations::parse`]).
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

/// What a location's URL says: where its objects are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A directory of this machine.
    Local(PathBuf),
    /// A bucket of an S3-compatible store.
    S3(S3Target),
}

/// A bucket, where in it objects go, and the settings the URL gives beside the environment's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Target {
    pub(crate) bucket: String,
    /// Path segments joined by `/`, checked by object_store; empty for the whole bucket.
    pub(crate) prefix: String,
    /// Replaces `AWS_ENDPOINT_URL`; an `http://` one is allowed plain HTTP.
    pub(crate) endpoint: Option<String>,
    /// Replaces `AWS_REGION`.
    pub(crate) region: Option<String>,
}

impl Location {
    /// Where this location's objects are.
    pub(crate) fn target(&self) -> Result<Target, BlobError> {
        target(&self.url).map_err(|reason| {
            BlobError::BadLocation(format!("{}: `{}` {reason}", self.name, self.url))
        })
    }
}

impl Locations {
    /// Reads a spec: comma-separated `NAME=URL@COUNTRY` entries, such as
    /// `local=file:///srv/blobs@FR,us-east=s3://lutece-us/blobs@US`. Names are DNS-label-like
    /// (`validate_name`); countries are ISO 3166-1 codes. A URL is either
    ///
    /// - `file:///ABS/DIR`: a directory of this machine (taken as written, not
    ///   percent-decoded), created if missing;
    /// - `s3://BUCKET[/PREFIX][?OPTIONS]`: a bucket of Amazon S3 or of any S3-compatible store
    ///   (MinIO, Ceph, Garage, Scaleway, OVHcloud…), which must exist; objects go under
    ///   `PREFIX/` when one is given. The store is configured as object_store's
    ///   `AmazonS3Builder::from_env` does, from the `AWS_*` environment variables:
    ///   `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (without them, the instance's or the
    ///   container's role), `AWS_REGION` or `AWS_DEFAULT_REGION` (default `us-east-1`),
    ///   `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`) for a store other than Amazon's, and
    ///   `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint. OPTIONS, `KEY=VALUE` pairs joined by
    ///   `&` and taken as written, set what differs between locations in place of those
    ///   variables: `endpoint=URL` (`http://` allows plain HTTP for this location) and
    ///   `region=NAME`, as in
    ///   `paris=s3://lutece/blobs?endpoint=https://s3.fr-par.scw.cloud&region=fr-par@FR`.
    ///   Credentials are never written in a spec, which configuration files, process listings
    ///   and error messages show: every S3 location uses the environment's, and an `@` before
    ///   `@COUNTRY` in an s3:// URL is refused unshown.
    pub fn parse(spec: &str) -> Result<Locations, BlobError> {
        let mut locations: Vec<Location> = Vec::new();
        for entry in spec.split(',').map(str::trim) {
            let location = parse_entry(entry).map_err(BlobError::BadLocation)?;
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

/// One `NAME=URL@COUNTRY`; the error shows the entry and says which part is wrong.
fn parse_entry(entry: &str) -> Result<Location, String> {
    let (name, url) = entry.split_once('=').unwrap_or((entry, ""));
    // Before `@COUNTRY`, an `@` in an s3:// URL could only be credentials (`s3://KEY:SECRET@…`,
    // `endpoint=http://USER:PASSWORD@…`): refuse it without showing the entry.
    if url.starts_with("s3://") && url.matches('@').count() > 1 {
        return Err(format!(
            "{name}: its s3:// URL holds an `@`, as credentials would (the URL is not shown); \
             set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
        ));
    }
    // An s3:// URL may hold credentials in a form not caught above (`s3://KEY:SECRET@BUCKET`
    // with no country after it): its errors name the location, never the entry.
    if url.starts_with("s3://") {
        return entry_parts(entry).map_err(|reason| format!("{name}: {reason}"));
    }
    entry_parts(entry).map_err(|reason| format!("`{entry}`: {reason}"))
}

/// The parts of one `NAME=URL@COUNTRY`; the reason it is not one otherwise.
fn entry_parts(entry: &str) -> Result<Location, String> {
    if entry.is_empty() {
        return Err(format!(
            "is empty; write NAME=URL@COUNTRY, such as {EXAMPLE}"
        ));
    }
    let (name, rest) = entry
        .split_once('=')
        .ok_or_else(|| format!("has no `=`; write NAME=URL@COUNTRY, such as {EXAMPLE}"))?;
    lutece_core::validate_name(name).map_err(|e| format!("the name `{name}` {e}"))?;
    let (url, country) = rest
        .rsplit_once('@')
        .ok_or("has no `@COUNTRY` after its URL, such as @FR")?;
    let jurisdiction = Jurisdiction::parse(country).map_err(|e| e.to_string())?;
    target(url).map_err(|reason| format!("`{url}` {reason}"))?;
    Ok(Location {
        name: name.to_owned(),
        jurisdiction,
        url: url.to_owned(),
    })
}

/// Where a URL points; the reason it is not a location's URL otherwise.
fn target(url: &str) -> Result<Target, String> {
    if let Some(rest) = url.strip_prefix("s3://") {
        return s3_target(rest).map(Target::S3);
    }
    let path = url
        .strip_prefix("file://")
        .ok_or("is not a file:// or s3:// URL (such as file:///srv/blobs or s3://bucket/prefix)")?;
    if !path.starts_with('/') {
        return Err(
            "does not name an absolute directory (file:///srv/blobs has three slashes)".into(),
        );
    }
    if path.split('/').any(|part| part == "..") {
        return Err("may not contain `..`".into());
    }
    Ok(Target::Local(PathBuf::from(path)))
}

/// The parts of an `s3://` URL, after the scheme.
fn s3_target(rest: &str) -> Result<S3Target, String> {
    let (path, options) = rest.split_once('?').unwrap_or((rest, ""));
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err("names no bucket (write s3://BUCKET or s3://BUCKET/PREFIX)".into());
    }
    if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!("has a bucket name that contains {c:?}"));
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if !prefix.is_empty() {
        object_store::path::Path::parse(prefix)
            .map_err(|e| format!("has a prefix that is not a valid object path: {e}"))?;
    }
    let mut target = S3Target {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        endpoint: None,
        region: None,
    };
    for option in options.split('&').filter(|o| !o.is_empty()) {
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| format!("has an option `{option}` with no `=VALUE`"))?;
        let slot = match key {
            "endpoint" => {
                check_endpoint(value)?;
                &mut target.endpoint
            }
            "region" => {
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                {
                    return Err(format!("has a region `{value}` that is not a region name"));
                }
                &mut target.region
            }
            _ => {
                return Err(format!(
                    "has an unknown option `{key}` (the options are endpoint and region; \
                     credentials come from the environment)"
                ));
            }
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(format!("gives the option `{key}` twice"));
        }
    }
    Ok(target)
}

/// An endpoint is an `http://` or `https://` URL to a host.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let host = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| format!("has an endpoint `{endpoint}` that is not an http(s):// URL"))?;
    if host.is_empty() || host.starts_with('/') {
        return Err(format!("has an endpoint `{endpoint}` that names no host"));
    }
    Ok(())
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

    fn s3(url: &str) -> S3Target {
        match target(url).unwrap() {
            Target::S3(s3) => s3,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_spec_names_locations_in_countries() {
        let locations: Locations = "local=file:///srv/blobs@fr, us-east=s3://lutece-us/blobs@US"
            .parse()
            .unwrap();
        let names: Vec<&str> = locations.list().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["local", "us-east"]);
        let local = locations.get("local").unwrap();
        assert_eq!(local.url, "file:///srv/blobs");
        assert_eq!(
            local.target().unwrap(),
            Target::Local(PathBuf::from("/srv/blobs"))
        );
        let us = locations.get("us-east").unwrap();
        assert_eq!(us.jurisdiction.as_str(), "US");
        assert_eq!(us.url, "s3://lutece-us/blobs");
        assert_eq!(locations.default_location().name, "local");
        assert!(locations.get("eu").is_none());
        // The last `@` splits: a directory may hold one.
        let at = Locations::parse("a=file:///x@y@DE").unwrap();
        assert_eq!(at.list()[0].url, "file:///x@y");
    }

    #[test]
    fn an_s3_url_names_a_bucket_a_prefix_and_options() {
        assert_eq!(
            s3("s3://bucket"),
            S3Target {
                bucket: "bucket".into(),
                prefix: String::new(),
                endpoint: None,
                region: None,
            }
        );
        assert_eq!(s3("s3://bucket/").prefix, "");
        assert_eq!(s3("s3://my.bucket_1/a/b/").prefix, "a/b");
        let both = s3("s3://b/p?endpoint=http://127.0.0.1:9000&region=fr-par");
        assert_eq!(
            (both.endpoint.as_deref(), both.region.as_deref()),
            (Some("http://127.0.0.1:9000"), Some("fr-par"))
        );
        assert_eq!(
            s3("s3://b?endpoint=https://s3.gra.io.cloud.ovh.net/")
                .endpoint
                .as_deref(),
            Some("https://s3.gra.io.cloud.ovh.net/")
        );
    }

    #[test]
    fn a_bad_spec_names_its_bad_part() {
        assert_eq!(
            refusal("local=file:///a@FR,"),
            "storage location ``: is empty; write NAME=URL@COUNTRY, such as \
             local=file:///srv/blobs@FR or paris=s3://bucket/prefix@FR"
        );
        assert!(refusal("file:///a@FR").contains("`file:///a@FR`: has no `=`"));
        assert!(refusal("Big=file:///a@FR").contains("the name `Big` contains 'B'"));
        assert!(refusal("a=file:///a").contains("has no `@COUNTRY`"));
        assert!(refusal("a=file:///a@XX1").contains("`XX1` is not a country code"));
        assert!(refusal("a=ftp://h/a@FR").contains("`ftp://h/a` is not a file:// or s3:// URL"));
        assert!(refusal("a=file://rel/a@FR").contains("absolute directory"));
        assert!(refusal("a=file:///a/../b@FR").contains("`..`"));
        assert!(refusal("a=file:///a@FR,a=file:///b@DE").contains("the name a is given twice"));
        assert!(refusal("a=s3://@FR").contains("names no bucket"));
        assert!(refusal("a=s3:///p@FR").contains("names no bucket"));
        assert!(refusal("a=s3://b:x/p@FR").contains("bucket name that contains ':'"));
        assert!(refusal("a=s3://b/x//y@FR").contains("prefix that is not a valid object path"));
        assert!(refusal("a=s3://b/../y@FR").contains("prefix that is not a valid object path"));
        assert!(refusal("a=s3://b?region@FR").contains("option `region` with no `=VALUE`"));
        assert!(refusal("a=s3://b?key=x@FR").contains("unknown option `key`"));
        assert!(refusal("a=s3://b?region=a&region=b@FR").contains("option `region` twice"));
        assert!(refusal("a=s3://b?region=eu west@FR").contains("not a region name"));
        assert!(refusal("a=s3://b?endpoint=ftp://h@FR").contains("not an http(s):// URL"));
        assert!(refusal("a=s3://b?endpoint=http://@FR").contains("names no host"));
    }

    #[test]
    fn credentials_in_a_spec_are_refused_unshown() {
        for spec in [
            "paris=s3://AKIA:s3cr3t@bucket/p@FR",
            "paris=s3://bucket?endpoint=http://minio:s3cr3t@127.0.0.1:9000@FR",
            // No country: the credentials' `@` is the only one.
            "paris=s3://AKIA:s3cr3t@bucket/p",
            "paris=s3://bucket?endpoint=http://minio:s3cr3t@127.0.0.1:9000",
        ] {
            let refused = refusal(spec);
            assert!(refused.starts_with("storage location paris: "), "{refused}");
            assert!(!refused.contains("s3cr3t"), "{refused}");
            if spec.ends_with("@FR") {
                assert!(refused.contains("AWS_SECRET_ACCESS_KEY"), "{refused}");
            }
        }
    }
}
