//! Where the store lives: `--store sqlite:PATH` (a data directory) or
//! `--store postgres://user:password@host:port/db`. Parsing only; the
//! backends open what it names.

use std::path::PathBuf;

/// A store's location, as `--store` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// The embedded store in this data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://` or `postgresql://` URL, as
    /// libpq takes it).
    Postgres(String),
}

/// Why a `--store` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreUrlError {
    /// Neither `sqlite:` nor `postgres://`.
    #[error(
        "unknown store '{0}': use sqlite:DATA_DIR or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    UnknownScheme(String),
    /// `sqlite:` with no directory.
    #[error("sqlite: needs a data directory (sqlite:/var/lib/drover)")]
    EmptyPath,
    /// A PostgreSQL URL that names no host.
    #[error("postgres store URL {0} names no host")]
    NoHost(String),
}

impl std::str::FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreUrlError::EmptyPath);
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        for scheme in ["postgres://", "postgresql://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                let authority = rest.split(['/', '?']).next().unwrap_or("");
                let host = authority.rsplit('@').next().unwrap_or("");
                if host.is_empty() {
                    return Err(StoreUrlError::NoHost(redact(s)));
                }
                return Ok(StoreUrl::Postgres(s.to_owned()));
            }
        }
        Err(StoreUrlError::UnknownScheme(redact(s)))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// A URL with its password replaced by `***`, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_backends_and_refuses_others() {
        assert_eq!(
            "sqlite:/var/lib/drover".parse(),
            Ok(StoreUrl::Sqlite("/var/lib/drover".into()))
        );
        assert_eq!(
            "postgres://d:pw@127.0.0.1:5432/drover".parse(),
            Ok(StoreUrl::Postgres(
                "postgres://d:pw@127.0.0.1:5432/drover".into()
            ))
        );
        assert_eq!("sqlite:".parse::<StoreUrl>(), Err(StoreUrlError::EmptyPath));
        assert!(matches!(
            "mysql://x".parse::<StoreUrl>(),
            Err(StoreUrlError::UnknownScheme(_))
        ));
        assert!(matches!(
            "postgres:///db".parse::<StoreUrl>(),
            Err(StoreUrlError::NoHost(_))
        ));
    }

    #[test]
    fn passwords_never_show() {
        let url: StoreUrl = "postgres://drover:s3cret@db:5432/drover".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://drover:***@db:5432/drover");
        assert!(!redact("postgresql://a:s3cret@h/d?x=1").contains("s3cret"));
    }
}
