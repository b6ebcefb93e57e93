//! Loading a role file, merging its includes, and the semantic checks `check` and `run` share.
//! Every problem is collected (never the first only); positions are found in the file text each
//! loaded role carries ([`LoadedRole::sources`]), never by reading the file again.

use std::collections::BTreeMap;
use std::path::Path;

use super::{
    capability_known, role_file, signal_known, valid_role_name, LoadedRole, Probe, RoleDef,
};
use crate::config::source::SourceText;
use crate::error::{Diagnostic, Diagnostics};

/// Reads, parses and merges role `name` (and, recursively, its includes). `stack` holds the roles
/// being merged, to report include cycles. `None` when something was wrong (reported in `diags`).
pub(super) fn merge(
    dir: &Path,
    name: &str,
    stack: &mut Vec<String>,
    diags: &mut Diagnostics,
) -> Option<LoadedRole> {
    let file = role_file(dir, name);
    let source =
        match crate::config::limits::read_text(&file, crate::config::limits::InputKind::Role) {
            Ok(t) => SourceText::new(file.display().to_string(), t),
            Err(e) => {
                diags.push(Diagnostic::new(
                    file.display().to_string(),
                    format!("cannot read the role file: {e}"),
                ));
                return None;
            }
        };
    let def: RoleDef = match serde_yaml::from_str(&source.text) {
        Ok(d) => d,
        Err(e) => {
            diags.push(source.yaml_error(&e));
            return None;
        }
    };
    let mut merged = LoadedRole {
        name: name.to_string(),
        file: file.clone(),
        def: RoleDef {
            description: def.description.clone(),
            include: def.include.clone(),
            defaults: BTreeMap::new(),
            warnings: Vec::new(),
            render: Vec::new(),
            services: BTreeMap::new(),
            adjust: BTreeMap::new(),
        },
        service_files: BTreeMap::new(),
        render_files: Vec::new(),
        sources: BTreeMap::new(),
    };
    let mut ok = true;
    stack.push(name.to_string());
    for include in &def.include {
        if stack.contains(include) {
            let chain = stack
                .iter()
                .chain(std::iter::once(include))
                .cloned()
                .collect::<Vec<_>>()
                .join(" -> ");
            diags.push(source.diagnostic_at(
                Some("include"),
                include,
                format!("include cycle: {chain}"),
            ));
            ok = false;
        } else if !valid_role_name(include) || !role_file(dir, include).is_file() {
            diags.push(source.diagnostic_at(
                Some("include"),
                include,
                format!("included role {include:?} not found in {}", dir.display()),
            ));
            ok = false;
        } else if let Some(sub) = merge(dir, include, stack, diags) {
            ok &= absorb(&mut merged, sub, Some(&source), diags);
        } else {
            ok = false;
        }
    }
    stack.pop();

    for spec in def.render {
        if !merged.def.render.contains(&spec) {
            merged.def.render.push(spec);
            merged.render_files.push(file.clone());
        }
    }
    merged.def.defaults.extend(def.defaults);
    add_warnings(&mut merged.def.warnings, def.warnings);
    for (service, spec) in def.services {
        if let Some(from) = merged.service_files.get(&service) {
            diags.push(source.diagnostic_at(
                Some("services"),
                &format!("{service}:"),
                format!(
                    "service {service:?} is already defined by {}; change it with `adjust:` instead",
                    from.display()
                ),
            ));
            ok = false;
        } else {
            merged.service_files.insert(service.clone(), file.clone());
            merged.def.services.insert(service, spec);
        }
    }
    for (service, adjust) in &def.adjust {
        match merged.def.services.get_mut(service) {
            Some(spec) => adjust.apply(spec),
            None => {
                diags.push(source.diagnostic_at(
                    Some("adjust"),
                    &format!("{service}:"),
                    format!("`adjust` names {service:?}, which no included role defines"),
                ));
                ok = false;
            }
        }
    }
    merged.sources.insert(file, source);
    ok.then_some(merged)
}

/// Merges add-on role `name` (e.g. `ssh`, asked for by a setting rather than an `include:`) into
/// `merged`, as if `merged` included it. `false` when something was wrong (reported in `diags`).
pub(super) fn merge_addon(
    merged: &mut LoadedRole,
    dir: &Path,
    name: &str,
    diags: &mut Diagnostics,
) -> bool {
    let file = role_file(dir, name);
    if !valid_role_name(name) || !file.is_file() {
        diags.push(Diagnostic::new(
            file.display().to_string(),
            format!("add-on role {name:?} not found in {}", dir.display()),
        ));
        return false;
    }
    let mut stack = vec![merged.name.clone()];
    match merge(dir, name, &mut stack, diags) {
        Some(sub) => {
            // No position in the including role: the add-on is asked for by a setting.
            absorb(merged, sub, None, diags)
        }
        None => false,
    }
}

/// Appends `more` to `warnings`, each once (a role reached twice through includes warns once).
fn add_warnings(warnings: &mut Vec<String>, more: Vec<String>) {
    for w in more {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
}

/// Adds an included role's parts to `merged`; a service defined differently by two includes is an
/// error (the same service reached twice through a diamond is fine).
fn absorb(
    merged: &mut LoadedRole,
    sub: LoadedRole,
    including: Option<&SourceText>,
    diags: &mut Diagnostics,
) -> bool {
    let mut ok = true;
    merged.sources.extend(sub.sources);
    for (spec, from) in sub.def.render.into_iter().zip(sub.render_files) {
        if !merged.def.render.contains(&spec) {
            merged.def.render.push(spec);
            merged.render_files.push(from);
        }
    }
    merged.def.defaults.extend(sub.def.defaults);
    add_warnings(&mut merged.def.warnings, sub.def.warnings);
    for (service, spec) in sub.def.services {
        let from = sub
            .service_files
            .get(&service)
            .cloned()
            .unwrap_or_else(|| sub.file.clone());
        match merged.def.services.get(&service) {
            Some(existing) if *existing == spec => {}
            Some(_) => {
                let message = format!(
                    "service {service:?} from {} conflicts with another included definition",
                    from.display()
                );
                diags.push(match including {
                    Some(source) => source.diagnostic_at(Some("include"), &sub.name, message),
                    None => Diagnostic::new(merged.file.display().to_string(), message),
                });
                ok = false;
            }
            None => {
                merged.service_files.insert(service.clone(), from);
                merged.def.services.insert(service, spec);
            }
        }
    }
    ok
}

/// The semantic checks on a merged role: names, references, cycles, signals, capabilities, probes,
/// modes. Template checks (missing files, syntax, undefined variables) are `render::check_role`'s.
pub(super) fn check_role(role: &LoadedRole, diags: &mut Diagnostics) {
    for (i, spec) in role.def.render.iter().enumerate() {
        let file = role.render_files.get(i).unwrap_or(&role.file);
        if let Err(why) = template_name_problem(&spec.template) {
            diags.push(role.diagnostic_in(file, Some("render"), &spec.template, why));
        }
        if spec.to.trim().is_empty() {
            diags.push(role.diagnostic_in(file, Some("render"), "to:", "`to` is empty"));
        }
        if let Some(mode) = &spec.mode {
            if parse_octal(mode, 0o7777).is_none() {
                diags.push(role.diagnostic_in(
                    file,
                    Some(&spec.template),
                    mode,
                    format!("invalid mode {mode:?}: expected octal such as \"0644\""),
                ));
            }
        }
    }
    for (name, service) in &role.def.services {
        let file = role.file_of_service(name);
        let anchor = format!("{name}:");
        let anchor = Some(anchor.as_str());
        let mut problem = |needle: &str, message: String| {
            let d = role.diagnostic_in(file, anchor, needle, message);
            diags.push(d);
        };
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.is_empty()
        {
            problem(
                name,
                format!("invalid service name {name:?}: use letters, digits, '-', '_' and '.'"),
            );
        }
        match service.command.first() {
            None => problem("command", "`command` is empty".into()),
            Some(argv0) if argv0.trim().is_empty() => {
                problem("command", "the command's program is empty".into())
            }
            Some(_) => {}
        }
        for dep in &service.after {
            if dep == name {
                problem(dep, format!("service {name:?} cannot start after itself"));
            } else if !role.def.services.contains_key(dep) {
                problem(
                    dep,
                    format!(
                        "`after` names {dep:?}, which is not a service of role {:?} (services: {})",
                        role.name,
                        role.def
                            .services
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if !signal_known(&service.stop.signal) {
            problem(
                &service.stop.signal,
                format!("unknown signal name {:?} in `stop`", service.stop.signal),
            );
        }
        for sig in &service.forward_signals {
            if !signal_known(sig) {
                problem(
                    sig,
                    format!("unknown signal name {sig:?} in `forward_signals`"),
                );
            }
        }
        for sig in &service.agent_signals {
            if !super::names::agent_signal_known(sig) {
                problem(
                    sig,
                    format!("{sig:?} in `agent_signals`: only HUP (reload), TERM and INT (stop) ask the agent to act"),
                );
            }
        }
        for cap in &service.capabilities {
            if !capability_known(cap) {
                problem(cap, format!("unknown capability {cap:?}"));
            }
        }
        if let Some(umask) = &service.umask {
            if parse_octal(umask, 0o777).is_none() {
                problem(
                    umask,
                    format!("invalid umask {umask:?}: expected octal such as \"0022\""),
                );
            }
        }
        for key in service.environment.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                problem(key, format!("invalid environment variable name {key:?}"));
            }
        }
        let backoff = &service.backoff;
        if !backoff.factor.is_finite() || backoff.factor < 1.0 {
            problem(
                "factor",
                format!("backoff factor must be at least 1, not {}", backoff.factor),
            );
        }
        if let Some(drain) = &service.stop.drain {
            if !signal_known(&drain.signal) {
                problem(
                    &drain.signal,
                    format!("unknown drain signal {:?}", drain.signal),
                );
            }
        }
        let until = service.stop.drain.as_ref().and_then(|d| d.until.as_ref());
        for (what, probe) in [
            ("ready", service.ready.as_ref()),
            ("health", service.health.as_ref()),
            ("until", until),
        ] {
            if let Some(probe) = probe {
                if let Some(why) = probe_problem(probe) {
                    problem(what, format!("`{what}` probe: {why}"));
                }
            }
        }
    }
    for cycle in dependency_cycles(&role.def.services) {
        let first = cycle.first().cloned().unwrap_or_default();
        let file = role.file_of_service(&first);
        diags.push(role.diagnostic_in(
            file,
            Some(&format!("{first}:")),
            "after",
            format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }
}

/// Why a `template:` name is not acceptable (absolute, `..`, empty), if it is not.
pub fn template_name_problem(name: &str) -> Result<(), String> {
    let path = Path::new(name);
    if name.trim().is_empty() {
        return Err("`template` is empty".into());
    }
    if path.is_absolute()
        || path
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "template {name:?} must be a relative path under the templates directory (no `..`)"
        ));
    }
    Ok(())
}

/// Parses an octal mode or umask no larger than `max`.
pub fn parse_octal(text: &str, max: u32) -> Option<u32> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    if digits.is_empty() {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= max)
}

fn probe_problem(probe: &Probe) -> Option<String> {
    let kinds = [
        probe.http.is_some(),
        probe.tcp.is_some(),
        probe.exec.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds != 1 {
        return Some("set exactly one of `http`, `tcp` or `exec`".into());
    }
    if probe.json.is_some() && probe.http.is_none() {
        return Some("`json` needs `http`".into());
    }
    if probe.exec.as_ref().is_some_and(Vec::is_empty) {
        return Some("`exec` is empty".into());
    }
    if probe.threshold == 0 {
        return Some("`threshold` must be at least 1".into());
    }
    None
}

/// Every dependency cycle among the services' `after` lists, each once (as `a -> b -> a`).
fn dependency_cycles(services: &BTreeMap<String, super::ServiceSpec>) -> Vec<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        services: &BTreeMap<String, super::ServiceSpec>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        match marks.get(node) {
            Some(Mark::Done) => return,
            Some(Mark::Visiting) => {
                if let Some(start) = path.iter().position(|p| p == node) {
                    let mut cycle: Vec<String> = path.get(start..).unwrap_or(&[]).to_vec();
                    cycle.push(node.to_string());
                    cycles.push(cycle);
                }
                return;
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Visiting);
        path.push(node.to_string());
        if let Some(spec) = services.get(node) {
            for dep in &spec.after {
                if services.contains_key(dep) && dep != node {
                    visit(dep, services, marks, path, cycles);
                }
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut cycles = Vec::new();
    for name in services.keys() {
        visit(name, services, &mut marks, &mut Vec::new(), &mut cycles);
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal() {
        assert_eq!(parse_octal("0644", 0o7777), Some(0o644));
        assert_eq!(parse_octal("600", 0o7777), Some(0o600));
        assert_eq!(parse_octal("0o022", 0o777), Some(0o22));
        assert_eq!(parse_octal("0999", 0o7777), None);
        assert_eq!(parse_octal("07777", 0o777), None);
    }

    #[test]
    fn template_names() {
        assert!(template_name_problem("spark/spark-env.sh").is_ok());
        assert!(template_name_problem("../etc/passwd").is_err());
        assert!(template_name_problem("/etc/passwd").is_err());
        assert!(template_name_problem("a/../../b").is_err());
        assert!(template_name_problem("").is_err());
    }
}
