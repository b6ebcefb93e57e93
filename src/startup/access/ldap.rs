//! The `ldap` add-on's settings (docs/access.md "LDAP / Active Directory users"): whether it can run
//! at all, the directory flavour (`ldap.schema`: RFC 2307 or Active Directory) and the filters and
//! attribute names derived from it, which `nslcd.conf` and the ssh key lookup both use, so that the
//! accounts nslcd shows and the accounts whose keys sshd accepts are the same.

use std::path::Path;
use std::time::Duration;

use super::{derived, problem, Agent, LDAP_URI_SETTING};
use crate::config::ResolvedConfig;
use crate::error::Diagnostic;

/// Setting naming the directory flavour (`SPARKVISOR_LDAP_SCHEMA`): `rfc2307` or `ad`.
pub const SCHEMA_SETTING: &str = "ldap.schema";
/// Setting holding an extra filter the users must match (`SPARKVISOR_LDAP_USER_FILTER`).
pub const USER_FILTER_SETTING: &str = "ldap.user_filter";
/// Setting naming the attribute that holds users' ssh public keys (`SPARKVISOR_LDAP_SSH_KEY_ATTR`).
pub const KEY_ATTR_SETTING: &str = "ldap.ssh_key_attr";
/// sshd's `AuthorizedKeysCommand` with LDAP on (rendered by `roles/ldap.yaml`: keep both equal).
/// Under `/etc/ssh`: sshd runs a command only when it and every directory above it are root's and
/// not writable by others.
pub const KEYS_COMMAND: &str = "/etc/ssh/sparkvisor-ldap-keys.sh";
/// The user the key lookup runs as: nslcd's own, which exists for LDAP lookups and nothing else.
pub const KEYS_USER: &str = "nslcd";

/// One directory flavour: what a user and a group are and which attribute holds the login name.
struct Schema {
    users: &'static str,
    groups: &'static str,
    name_attr: &'static str,
}

/// Plain OpenLDAP-style directories (posixAccount, posixGroup, `uid`, `memberUid`).
const RFC2307: Schema = Schema {
    users: "(objectClass=posixAccount)",
    groups: "(objectClass=posixGroup)",
    name_attr: "uid",
};

/// Active Directory with POSIX attributes: users are `user` objects (not computers, which are
/// users too) that have a `uidNumber`; the login name is `sAMAccountName`; groups are `group`
/// objects with a `gidNumber`, members by DN (`member`, which nslcd follows by default).
const AD: Schema = Schema {
    users: "(&(objectClass=user)(!(objectClass=computer))(uidNumber=*))",
    groups: "(&(objectClass=group)(gidNumber=*))",
    name_attr: "sAMAccountName",
};

/// The `ldap` part can run: a root agent, a well-formed URI, the CA file when one is named, a known
/// schema and a well-formed user filter. Derives `ldap.schema` (normalised), `ldap.passwd_filter`,
/// `ldap.group_filter` and `ldap.name_attr` for the templates; returns the problem that stops LDAP.
pub fn check(config: &mut ResolvedConfig, agent: &Agent) -> Result<(), Diagnostic> {
    let Some(uri) = config.settings.get(LDAP_URI_SETTING) else {
        return Ok(());
    };
    if !agent.root {
        return Err(problem(
            &uri.source,
            format!(
                "{LDAP_URI_SETTING}: LDAP users need the agent to run as root (nslcd, PAM); \
                 LDAP is not started"
            ),
        ));
    }
    for one in uri.value.split_whitespace() {
        if host_port(one).is_none() {
            return Err(problem(
                &uri.source,
                format!(
                    "{LDAP_URI_SETTING}: {one:?} is not an LDAP URI (ldap://HOST[:PORT] or \
                     ldaps://HOST[:PORT]); LDAP is not started"
                ),
            ));
        }
    }
    if let Some(ca) = config.settings.get("ldap.tls_cacert") {
        let path = ca.value.trim();
        if !path.is_empty() && !Path::new(path).is_file() {
            return Err(problem(
                &ca.source,
                format!(
                    "ldap.tls_cacert: CA file {path:?} does not exist or is not a file; LDAP is \
                     not started"
                ),
            ));
        }
    }
    let schema = match config.settings.get(SCHEMA_SETTING) {
        None => &RFC2307,
        Some(v) => match v.value.trim().to_ascii_lowercase().as_str() {
            "" | "rfc2307" => &RFC2307,
            "ad" => &AD,
            other => {
                return Err(problem(
                    &v.source,
                    format!(
                        "{SCHEMA_SETTING}: {other:?} is not a known directory schema (rfc2307 \
                         for OpenLDAP-style posixAccount users, ad for Active Directory); LDAP \
                         is not started"
                    ),
                ))
            }
        },
    };
    let extra = match config.settings.get(USER_FILTER_SETTING) {
        Some(v) if !v.value.trim().is_empty() => {
            let f = v.value.trim().to_string();
            if let Err(why) = check_filter(&f) {
                return Err(problem(
                    &v.source,
                    format!("{USER_FILTER_SETTING}: {f:?} {why}; LDAP is not started"),
                ));
            }
            Some(f)
        }
        _ => None,
    };
    let users = match extra {
        // `(&A B)` with A's own `&` flattened: one AND of every condition.
        Some(f) => match schema.users.strip_prefix("(&") {
            Some(inner) => format!("(&{}{f})", inner.strip_suffix(')').unwrap_or(inner)),
            None => format!("(&{}{f})", schema.users),
        },
        None => schema.users.to_string(),
    };
    let name = if std::ptr::eq(schema, &AD) {
        "ad"
    } else {
        "rfc2307"
    };
    derived(config, SCHEMA_SETTING, name.into(), SCHEMA_SETTING);
    derived(
        config,
        "ldap.passwd_filter",
        users,
        "ldap.schema and ldap.user_filter",
    );
    derived(
        config,
        "ldap.group_filter",
        schema.groups.into(),
        SCHEMA_SETTING,
    );
    derived(
        config,
        "ldap.name_attr",
        schema.name_attr.into(),
        SCHEMA_SETTING,
    );
    Ok(())
}

/// The ssh key attribute when it is usable: an LDAP attribute name (letters, digits, `-`, starting
/// with a letter), or `None` for "no keys from the directory" (empty or `none`), with a problem
/// when the value is neither.
pub fn key_attr(config: &ResolvedConfig) -> (Option<String>, Option<Diagnostic>) {
    let Some(v) = config.settings.get(KEY_ATTR_SETTING) else {
        return (None, None);
    };
    let attr = v.value.trim();
    if attr.is_empty() || attr.eq_ignore_ascii_case("none") {
        return (None, None);
    }
    let mut chars = attr.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        (Some(attr.to_string()), None)
    } else {
        (
            None,
            Some(problem(
                &v.source,
                format!(
                    "{KEY_ATTR_SETTING}: {attr:?} is not an LDAP attribute name; ssh keys are \
                     not read from the directory"
                ),
            )),
        )
    }
}

/// An LDAP search filter (RFC 4515) as far as matters here: one parenthesised expression whose
/// parentheses balance (literal parentheses in values are written `\28` `\29`).
fn check_filter(filter: &str) -> Result<(), String> {
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return Err("is not an LDAP filter: it must be enclosed in parentheses".into());
    }
    let mut depth = 0usize;
    for (i, c) in filter.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("has an unmatched ')' at character {}", i + 1))?;
                if depth == 0 && i + 1 != filter.len() {
                    return Err("is more than one filter: combine them with (&...)".into());
                }
            }
            c if c.is_control() => return Err("holds a control character".into()),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("has an unclosed '('".into());
    }
    Ok(())
}

/// `(host, port)` of an `ldap://` or `ldaps://` URI (default ports 389 and 636).
pub fn host_port(uri: &str) -> Option<(String, u16)> {
    let (rest, default) = if let Some(r) = uri.strip_prefix("ldap://") {
        (r, 389)
    } else if let Some(r) = uri.strip_prefix("ldaps://") {
        (r, 636)
    } else {
        return None;
    };
    let hostport = rest.split('/').next().unwrap_or_default();
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (hostport, default),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || !crate::config::validate::valid_host(host) {
        return None;
    }
    Some((host.to_string(), port))
}

/// A warning for every LDAP server that does not accept a TCP connection now. nslcd still starts
/// (it reconnects when the server comes up); logins through LDAP fail until then.
pub fn reachability(config: &ResolvedConfig) -> Vec<Diagnostic> {
    use std::net::{TcpStream, ToSocketAddrs};
    let Some(uri) = config.settings.get(LDAP_URI_SETTING) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for one in uri.value.split_whitespace() {
        let Some((host, port)) = host_port(one) else {
            continue;
        };
        let reached = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())
            .and_then(|mut addrs| {
                let addr = addrs.next().ok_or_else(|| "no address".to_string())?;
                TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = reached {
            out.push(problem(
                &uri.source,
                format!(
                    "{LDAP_URI_SETTING}: LDAP server {one} is unreachable ({e}); nslcd starts and \
                     retries, LDAP logins fail until it answers"
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_uris() {
        assert_eq!(
            host_port("ldap://ldap.example.org"),
            Some(("ldap.example.org".into(), 389))
        );
        assert_eq!(
            host_port("ldaps://10.0.0.1:1636/"),
            Some(("10.0.0.1".into(), 1636))
        );
        assert_eq!(host_port("http://x"), None);
        assert_eq!(host_port("ldap://"), None);
        assert_eq!(host_port("ldap://bad host"), None);
    }

    #[test]
    fn filters() {
        assert!(check_filter("(memberOf=cn=spark,ou=groups,dc=example,dc=org)").is_ok());
        assert!(check_filter("(|(a=1)(b=\\28x\\29))").is_ok());
        assert!(check_filter("memberOf=x").is_err());
        assert!(check_filter("(a=1)(b=2)").is_err());
        assert!(check_filter("((a=1)").is_err());
        assert!(check_filter("(a=1))").is_err());
    }
}
