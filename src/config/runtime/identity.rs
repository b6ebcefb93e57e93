//! The node's names: hostname and FQDN, each with where it came from.

use super::{env_value, Origin, Parsed};
use crate::config::env as vars;
use crate::config::inputs::Inputs;
use crate::config::model::NodeIdentity;
use crate::config::validate::check_host;
use crate::config::{Source, Sourced};
use crate::error::Diagnostics;

/// Hostname and FQDN: system < configmeta `node.hostname`/`node.fqdn` < SPARKVISOR_HOSTNAME/_FQDN.
pub(super) fn resolve_identity(
    inputs: &Inputs,
    parsed: &Parsed,
    problems: &mut Diagnostics,
) -> NodeIdentity {
    let mut hostname = (
        inputs.hostname.clone(),
        Origin::of(Source::System {
            from: "hostname".into(),
        }),
    );
    let mut fqdn = (
        inputs.fqdn.clone(),
        Origin::of(Source::System {
            from: inputs.fqdn_from.clone(),
        }),
    );
    if let Some((meta, _)) = &parsed.meta {
        if let (Some(h), Some(origin)) = (&meta.node.hostname, parsed.meta_origin("node.hostname"))
        {
            let short = h.split('.').next().unwrap_or(h).to_string();
            if h.contains('.') {
                fqdn = (h.clone(), origin.clone());
            }
            hostname = (short, origin);
        }
        if let (Some(f), Some(origin)) = (&meta.node.fqdn, parsed.meta_origin("node.fqdn")) {
            fqdn = (f.clone(), origin);
        }
    }
    if let Some(found) = env_value(inputs, vars::HOSTNAME_VAR) {
        // A system FQDN belongs to the system hostname: a new name without a domain is its own FQDN.
        if matches!(fqdn.1.source, Source::System { .. }) {
            fqdn = found.clone();
        }
        hostname = found;
    }
    if let Some(found) = env_value(inputs, vars::FQDN_VAR) {
        fqdn = found;
    }
    for (value, origin) in [&hostname, &fqdn] {
        if let Err(message) = check_host(value) {
            problems.push(origin.diagnostic(message));
        }
    }
    NodeIdentity {
        hostname: Sourced::new(hostname.0, hostname.1.source),
        fqdn: Sourced::new(fqdn.0, fqdn.1.source),
    }
}
