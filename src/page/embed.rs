//! Who an embedded view talks to: the `host` address parameter read as an origin, which
//! `postMessage` messages the page accepts, and where its own messages go.
//!
//! The rules (also in `docs/tutorial/embedding.html`):
//! - a message is accepted only from the window that embeds the page (`event.source` is
//!   `window.parent`, and the page is in a frame): never from a popup, a sibling frame or the
//!   page itself;
//! - with `?host=https://example.org`, only when that parent has exactly this origin, and the
//!   page's messages are posted to this origin only (not at all to a parent the browser says
//!   is elsewhere);
//! - without `host`, the parent may have any origin, and the page's messages go to the parent's
//!   origin as the browser names it (`location.ancestorOrigins`, else the referrer); when the
//!   browser names none, the page posts nothing;
//! - a `host` that is not an origin turns messages off both ways, and the page says why.

use thiserror::Error;

/// Why a `host` parameter is not an origin.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum HostError {
    /// It does not start with `http://` or `https://`.
    #[error(
        "host={0:?} is not an origin: it must start with https:// or http://, as in host=https://example.org"
    )]
    Scheme(String),
    /// Nothing follows the scheme, or the host has characters an origin cannot have.
    #[error(
        "host={0:?} is not an origin: it names no host (write it in ASCII, as in host=https://example.org)"
    )]
    Host(String),
    /// The port is not a number from 1 to 65535.
    #[error("host={0:?} is not an origin: its port must be a number from 1 to 65535")]
    Port(String),
    /// It has a path, a query, a fragment or user information after the host.
    #[error(
        "host={0:?} is not an origin: give only the scheme, host and port, as in host=https://example.org:8443"
    )]
    NotAnOrigin(String),
}

/// The origin `value` names, written as browsers write `MessageEvent.origin`: the scheme and
/// host in lower case, the port only when it is not the scheme's default, no trailing slash.
pub fn parse_origin(value: &str) -> Result<String, HostError> {
    let lower = value.to_ascii_lowercase();
    let (scheme, default_port, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        ("https", 443, rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        ("http", 80, rest)
    } else {
        return Err(HostError::Scheme(value.into()));
    };
    // One trailing slash is how many people write an origin; anything more is a path.
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@', '\\']) {
        return Err(HostError::NotAnOrigin(value.into()));
    }
    let (host, port) = split_port(authority).ok_or_else(|| HostError::Host(value.into()))?;
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    if !host_ok {
        return Err(HostError::Host(value.into()));
    }
    let port = match port {
        None => None,
        Some(digits) => {
            let number = (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
                .then(|| digits.parse::<u16>().ok())
                .flatten()
                .filter(|&port| port != 0)
                .ok_or_else(|| HostError::Port(value.into()))?;
            (number != default_port).then_some(number)
        }
    };
    Ok(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// Splits `host[:port]` (an IPv6 host in brackets); `None` when the brackets do not close.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    Some(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// Whom the page exchanges messages with, decided once from its `host` parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPolicy {
    /// No `host`: the parent window, whatever its origin.
    AnyParent,
    /// `host` names this origin: the parent window, only with this origin.
    Origin(String),
    /// `host` is not an origin: no messages either way.
    Invalid(HostError),
}

impl HostPolicy {
    /// The policy for the value of the `host` parameter (`None` when the address has none).
    pub fn from_param(host: Option<&str>) -> Self {
        match host.map(parse_origin) {
            None => Self::AnyParent,
            Some(Ok(origin)) => Self::Origin(origin),
            Some(Err(error)) => Self::Invalid(error),
        }
    }

    /// Whether to act on a message that came from the parent window (`from_parent`: its
    /// `source` is `window.parent` and the page is in a frame) with the given `origin`.
    pub fn accepts(&self, from_parent: bool, origin: &str) -> bool {
        from_parent
            && match self {
                Self::AnyParent => true,
                Self::Origin(host) => host == origin,
                Self::Invalid(_) => false,
            }
    }

    /// The target origin of the page's messages to its parent, given the parent's origin as the
    /// browser names it (`location.ancestorOrigins[0]` or the referrer's origin, if any);
    /// `None`: post nothing. With `host`, nothing either when the browser names another parent
    /// origin: the browser would drop the message (with an error in the console).
    pub fn reply_origin(&self, parent_origin: Option<&str>) -> Option<String> {
        let known = parent_origin.and_then(|origin| parse_origin(origin).ok());
        match self {
            Self::Origin(host) => match known {
                Some(parent) if &parent != host => None,
                _ => Some(host.clone()),
            },
            // An opaque parent ("null") or anything else that is not an origin gets nothing.
            Self::AnyParent => known,
            Self::Invalid(_) => None,
        }
    }

    /// What the page should tell the user about its `host` parameter, if anything.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Invalid(error) => Some(format!(
                "{error}. Messages to and from the embedding page are off."
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_written_as_browsers_write_them() {
        for (given, origin) in [
            ("https://example.org", "https://example.org"),
            ("https://Example.ORG/", "https://example.org"),
            ("HTTP://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://example.org:443", "https://example.org"),
            ("http://example.org:80/", "http://example.org"),
            ("http://localhost:0080", "http://localhost"),
            ("https://example.org:8443", "https://example.org:8443"),
            ("http://[::1]:3000", "http://[::1]:3000"),
            ("http://[::1]", "http://[::1]"),
            (
                "https://my_host.example-1.org",
                "https://my_host.example-1.org",
            ),
        ] {
            assert_eq!(parse_origin(given).as_deref(), Ok(origin), "{given}");
        }
    }

    #[test]
    fn what_is_not_an_origin_is_refused_with_the_reason() {
        for (given, error) in [
            ("example.org", HostError::Scheme("example.org".into())),
            (
                "ftp://example.org",
                HostError::Scheme("ftp://example.org".into()),
            ),
            ("null", HostError::Scheme("null".into())),
            ("", HostError::Scheme(String::new())),
            ("https://", HostError::Host("https://".into())),
            (
                "https://exa mple.org",
                HostError::Host("https://exa mple.org".into()),
            ),
            (
                "https://bücher.de",
                HostError::Host("https://bücher.de".into()),
            ),
            ("http://[::1", HostError::Host("http://[::1".into())),
            (
                "https://x.org:99999",
                HostError::Port("https://x.org:99999".into()),
            ),
            ("https://x.org:", HostError::Port("https://x.org:".into())),
            ("https://x.org:0", HostError::Port("https://x.org:0".into())),
            (
                "https://x.org:8a",
                HostError::Port("https://x.org:8a".into()),
            ),
            (
                "https://x.org/page.html",
                HostError::NotAnOrigin("https://x.org/page.html".into()),
            ),
            (
                "https://x.org//",
                HostError::NotAnOrigin("https://x.org//".into()),
            ),
            (
                "https://x.org?a=1",
                HostError::NotAnOrigin("https://x.org?a=1".into()),
            ),
            (
                "https://me@x.org",
                HostError::NotAnOrigin("https://me@x.org".into()),
            ),
        ] {
            assert_eq!(parse_origin(given), Err(error), "{given}");
        }
        assert!(
            parse_origin("example.org")
                .unwrap_err()
                .to_string()
                .contains("https://")
        );
    }

    #[test]
    fn only_the_parent_is_heard_and_with_host_only_its_origin() {
        let any = HostPolicy::from_param(None);
        assert_eq!(any, HostPolicy::AnyParent);
        assert!(any.accepts(true, "https://anyone.example"));
        // A popup, a sibling frame or the page itself: never.
        assert!(!any.accepts(false, "https://anyone.example"));

        let named = HostPolicy::from_param(Some("https://Tutorial.example/"));
        assert_eq!(named, HostPolicy::Origin("https://tutorial.example".into()));
        assert!(named.accepts(true, "https://tutorial.example"));
        assert!(!named.accepts(true, "https://other.example"));
        assert!(!named.accepts(true, "http://tutorial.example"));
        assert!(!named.accepts(false, "https://tutorial.example"));

        let invalid = HostPolicy::from_param(Some("tutorial.example"));
        assert!(matches!(invalid, HostPolicy::Invalid(HostError::Scheme(_))));
        assert!(!invalid.accepts(true, "https://tutorial.example"));
        assert!(!invalid.accepts(true, "tutorial.example"));
    }

    #[test]
    fn replies_go_to_the_named_origin_or_the_parent_the_browser_names() {
        let named = HostPolicy::Origin("https://tutorial.example".into());
        assert_eq!(
            named
                .reply_origin(Some("https://tutorial.example"))
                .as_deref(),
            Some("https://tutorial.example")
        );
        // Unknown parent: the browser delivers only if the parent has the named origin.
        assert_eq!(
            named.reply_origin(None).as_deref(),
            Some("https://tutorial.example")
        );
        assert_eq!(
            named.reply_origin(Some("null")).as_deref(),
            Some("https://tutorial.example")
        );
        // A parent known to be elsewhere gets nothing.
        assert_eq!(named.reply_origin(Some("https://elsewhere.example")), None);
        let any = HostPolicy::AnyParent;
        assert_eq!(
            any.reply_origin(Some("http://localhost:8080")).as_deref(),
            Some("http://localhost:8080")
        );
        // Never the wildcard: an unknown or opaque parent gets nothing.
        assert_eq!(any.reply_origin(None), None);
        assert_eq!(any.reply_origin(Some("null")), None);
        assert_eq!(any.reply_origin(Some("*")), None);
        let invalid = HostPolicy::from_param(Some("https://x.org/page"));
        assert_eq!(invalid.reply_origin(Some("https://x.org")), None);
        assert!(
            invalid
                .problem()
                .is_some_and(|p| p.contains("no path") || p.contains("only the scheme"))
        );
        assert_eq!(named.problem(), None);
        assert_eq!(any.problem(), None);
    }
}
