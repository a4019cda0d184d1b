//! Who may ask: the Host, Origin and `Sec-Fetch-Site` checks of the endpoints that a web page on
//! another site must never reach (`/ws`, `POST /api/setup`).
//!
//! Why a Host allowlist: a page on `attacker.example` whose name is re-pointed to 127.0.0.1
//! (DNS rebinding) talks to this server *same-origin*: its Origin equals its Host, so comparing
//! the two proves nothing. A Host is accepted only when it cannot be rebound — an IP literal —
//! or is `localhost`, a name in `remote.allowed_hosts`, or the host of an `remote.allowed_origins`
//! entry (the operator named those). Ports are not compared: rebinding changes names, not ports.

use axum::http::{header, HeaderMap, StatusCode, Uri};

use crate::code::Code;

/// A refused request: status, stable error code, message.
pub(super) struct Refused {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
}

impl Refused {
    fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: Code::Forbidden,
            message: message.into(),
        }
    }
}

/// The host names (lower case) accepted in `Host` besides IP literals and `localhost`.
#[derive(Debug, Default)]
pub(super) struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    pub(super) fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let from_origins = allowed_origins.iter().filter_map(|o| {
            let rest = o.split_once("://").map_or(o.as_str(), |(_, r)| r);
            let authority = rest.split('/').next().unwrap_or("");
            (!authority.is_empty()).then(|| authority.to_string())
        });
        let names = allowed_hosts
            .iter()
            .cloned()
            .chain(from_origins)
            .map(|h| normalize(host_part(&h)))
            .filter(|h| !h.is_empty())
            .collect();
        Self { names }
    }

    /// Whether a `Host` header value (with or without port) names this server.
    pub(super) fn allows(&self, host: &str) -> bool {
        let name = normalize(host_part(host));
        if name.is_empty() {
            return false;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        name == "localhost"
            || bare.parse::<std::net::IpAddr>().is_ok()
            || self.names.contains(&name)
    }
}

/// The host of `host[:port]` / `[v6][:port]`.
fn host_part(s: &str) -> &str {
    let s = s.trim();
    if s.starts_with('[') {
        return s.find(']').map_or(s, |i| &s[..=i]);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => s,
    }
}

fn normalize(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// The requested authority: `Host`, or the URI's authority (HTTP/2 has no Host header).
fn request_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|h| !h.is_empty())
}

/// Host allow-listed, then Origin (when a browser sent one) either allow-listed or exactly this
/// server's own origin under that allow-listed Host.
fn check_host_and_origin(
    headers: &HeaderMap,
    uri: &Uri,
    hosts: &Hosts,
    allowed_origins: &[String],
) -> Result<(), Refused> {
    let Some(host) = request_host(headers, uri) else {
        return Err(Refused::forbidden("missing Host header"));
    };
    if !hosts.allows(host) {
        return Err(Refused::forbidden(format!(
            "host {host:?} is not allowed (add it to remote.allowed_hosts)"
        )));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(()); // not a browser
    };
    let Ok(origin) = origin.to_str() else {
        return Err(Refused::forbidden("origin not allowed"));
    };
    let origin = origin.trim_end_matches('/');
    let listed = allowed_origins
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin));
    let own = origin.eq_ignore_ascii_case(&format!("http://{host}"))
        || origin.eq_ignore_ascii_case(&format!("https://{host}"));
    if listed || own {
        Ok(())
    } else {
        Err(Refused::forbidden("origin not allowed"))
    }
}

/// `/ws`: Host and Origin.
pub(super) fn check_ws(
    headers: &HeaderMap,
    uri: &Uri,
    hosts: &Hosts,
    allowed_origins: &[String],
) -> Result<(), Refused> {
    check_host_and_origin(headers, uri, hosts, allowed_origins)
}

/// `POST /api/setup`: JSON only (a cross-site form or `text/plain` fetch cannot send it without
/// a CORS preflight, which this server never grants), not `Sec-Fetch-Site: cross-site`/
/// `same-site`, then Host and Origin as for `/ws`.
pub(super) fn check_setup(
    headers: &HeaderMap,
    uri: &Uri,
    hosts: &Hosts,
    allowed_origins: &[String],
) -> Result<(), Refused> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Refused {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: Code::Invalid,
            message: "Content-Type must be application/json".into(),
        });
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("cross-site");
        if !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none")) {
            return Err(Refused::forbidden(format!(
                "request from another site (Sec-Fetch-Site: {site})"
            )));
        }
    }
    check_host_and_origin(headers, uri, hosts, allowed_origins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn hdrs(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hosts_accept_ip_literals_localhost_and_listed_names_only() {
        let h = Hosts::new(
            &["HMI.plant.local".into()],
            &["https://proxy.example:8443".into()],
        );
        for ok in [
            "127.0.0.1:8765",
            "10.1.2.3",
            "[::1]:8765",
            "[::ffff:127.0.0.1]",
            "localhost:8765",
            "LOCALHOST",
            "hmi.plant.local:8765",
            "proxy.example",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example:8765",
            "localhost.attacker.example",
            "",
            "127.0.0.1.nip.io",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn rebinding_is_refused_even_when_origin_equals_host() {
        let uri: Uri = "/ws".parse().unwrap();
        let h = Hosts::default();
        let rebound = hdrs(&[
            ("host", "evil.example:8765"),
            ("origin", "http://evil.example:8765"),
        ]);
        assert!(check_ws(&rebound, &uri, &h, &[]).is_err());
        let own = hdrs(&[
            ("host", "127.0.0.1:8765"),
            ("origin", "http://127.0.0.1:8765"),
        ]);
        assert!(check_ws(&own, &uri, &h, &[]).is_ok());
        let other_port = hdrs(&[
            ("host", "127.0.0.1:8765"),
            ("origin", "http://127.0.0.1:9999"),
        ]);
        assert!(check_ws(&other_port, &uri, &h, &[]).is_err());
    }

    #[test]
    fn setup_needs_json_and_same_origin() {
        let uri: Uri = "/api/setup".parse().unwrap();
        let h = Hosts::default();
        let base = [("host", "127.0.0.1:8765")];
        let plain = hdrs(&[base[0], ("content-type", "text/plain")]);
        assert_eq!(
            check_setup(&plain, &uri, &h, &[]).err().unwrap().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let json = hdrs(&[base[0], ("content-type", "application/json; charset=utf-8")]);
        assert!(check_setup(&json, &uri, &h, &[]).is_ok());
        let cross = hdrs(&[
            base[0],
            ("content-type", "application/json"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert_eq!(
            check_setup(&cross, &uri, &h, &[]).err().unwrap().code,
            "forbidden"
        );
    }
}
