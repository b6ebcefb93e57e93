//! Templates to files: builds the template context from the resolved config, renders each role file
//! with escaping that fits its format, and writes it atomically. Starts nothing.
//!
//! - [`context`]: the template context ([`build_context`]) and the sample inputs `check` uses;
//! - [`escape`]: one escape function per format, applied to every `{{ }}` string value;
//! - [`templates`]: the templates directory loaded into tera (includes only from there);
//! - [`write`]: atomic writes with mode and owner, mount points left alone.

pub mod context;
pub mod escape;
pub mod templates;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use context::build_context;
pub use escape::Format;
pub use templates::Templates;
pub use write::{write_files, RenderError, WriteReport};

use crate::config::role::{locate, parse_octal, template_name_problem, LoadedRole, Probe};
use crate::config::ServiceSpec;
use crate::error::{Diagnostic, Diagnostics};

/// One rendered file, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Absolute destination.
    pub path: PathBuf,
    /// Permission bits (0600 or tighter for secret files).
    pub mode: u32,
    /// `user[:group]` (name or number); `None` keeps the writer's own.
    pub owner: Option<String>,
    /// The rendered text.
    pub contents: String,
    /// Holds a secret: written 0600 (or tighter) and owned by the service user.
    pub secret: bool,
    /// The template it came from (relative to the templates directory).
    pub template: String,
}

/// Renders every `render:` entry of the role with `context`, loading the templates from
/// `templates_dir`. Every problem (missing template, undefined variable, refused value, ...) is
/// reported at once; nothing is written.
pub fn render_role(
    role: &LoadedRole,
    context: &Value,
    templates_dir: &Path,
) -> Result<Vec<RenderedFile>, Diagnostics> {
    let mut templates = Templates::load(templates_dir)?;
    render_with(role, context, &mut templates)
}

/// [`render_role`] with templates already loaded (check and run load them once for every role).
pub fn render_with(
    role: &LoadedRole,
    context: &Value,
    templates: &mut Templates,
) -> Result<Vec<RenderedFile>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut files = Vec::new();
    let secrets = context::secret_values(context);
    for (i, spec) in role.def.render.iter().enumerate() {
        let role_file = role.render_files.get(i).unwrap_or(&role.file);
        let mut problem = |needle: &str, message: String| {
            diags.push(diagnostic_in(
                role_file,
                Some(&spec.template),
                needle,
                message,
            ));
        };
        if let Err(why) = template_name_problem(&spec.template) {
            problem(&spec.template, why);
            continue;
        }
        if !templates.contains(&spec.template) {
            problem(
                &spec.template,
                format!(
                    "template {:?} not found in {}",
                    spec.template,
                    templates.dir().display()
                ),
            );
            continue;
        }
        let format = Format::for_name(&spec.template);
        let to = match templates::expand_str(&spec.to, context) {
            Ok(to) => to,
            Err(e) => {
                problem(&spec.to, format!("`to`: {e}"));
                continue;
            }
        };
        if !to.starts_with('/') || to.chars().any(char::is_control) {
            problem(
                &spec.to,
                format!(
                    "`to` must expand to an absolute path without control characters, not {to:?}"
                ),
            );
            continue;
        }
        if Format::for_name(&to) != format {
            problem(
                &spec.to,
                format!(
                    "`to` {to:?} has another format than template {:?}: the escaping would not fit",
                    spec.template
                ),
            );
            continue;
        }
        let contents = match templates.render(&spec.template, format, context) {
            Ok(c) => c,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        if contents.contains(escape::REFUSED) {
            diags.push(Diagnostic::new(
                templates.dir().join(&spec.template).display().to_string(),
                format!(
                    "a value substituted into this {format:?} file holds a character the format cannot carry safely (a control character); refused"
                ),
            ));
            continue;
        }
        let escape = format.escape_fn();
        let secret = spec.secret
            || secrets
                .iter()
                .any(|s| contents.contains(*s) || contents.contains(&escape(s)));
        let mode = match &spec.mode {
            Some(m) => parse_octal(m, 0o7777).unwrap_or(0o644),
            None if secret => 0o600,
            None => 0o644,
        };
        // A secret file is never readable by group or others, whatever the mode says.
        let mode = if secret { mode & 0o700 } else { mode };
        let owner_spec = spec.owner.clone().or_else(|| {
            secret
                .then(|| role.def.services.values().find_map(|s| s.user.clone()))
                .flatten()
        });
        let owner = match owner_spec.map(|o| templates::expand_str(&o, context)) {
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                diags.push(diagnostic_in(
                    role_file,
                    Some(&spec.template),
                    "owner",
                    format!("`owner`: {e}"),
                ));
                continue;
            }
            None => None,
        };
        files.push(RenderedFile {
            path: PathBuf::from(to),
            mode,
            owner,
            contents,
            secret,
            template: spec.template.clone(),
        });
    }
    diags.into_result(files)
}

/// Each service with every `{{ }}` in command, environment, user/group, working_dir and probe
/// strings expanded (values are NOT shell-escaped here: argv is exec'd directly). A value that
/// expands to something holding a NUL is refused (it cannot be passed to exec).
pub fn expand_services(
    role: &LoadedRole,
    context: &Value,
) -> Result<BTreeMap<String, ServiceSpec>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut out = BTreeMap::new();
    for (name, spec) in &role.def.services {
        let file = role.file_of_service(name);
        let anchor = format!("{name}:");
        let mut expand = |s: &str| -> String {
            match templates::expand_str(s, context) {
                Ok(v) if v.contains('\0') => {
                    diags.push(diagnostic_in(
                        file,
                        Some(&anchor),
                        s,
                        format!("{s:?} expands to a value with a NUL byte"),
                    ));
                    v
                }
                Ok(v) => v,
                Err(e) => {
                    diags.push(diagnostic_in(file, Some(&anchor), s, e));
                    s.to_string()
                }
            }
        };
        let mut service = spec.clone();
        service.command = spec.command.iter().map(|a| expand(a)).collect();
        service.environment = spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), expand(v)))
            .collect();
        service.user = spec.user.as_deref().map(&mut expand);
        service.group = spec.group.as_deref().map(&mut expand);
        service.groups = spec
            .groups
            .as_ref()
            .map(|g| g.iter().map(|x| expand(x)).collect());
        service.working_dir = spec.working_dir.as_deref().map(&mut expand);
        service.ready = spec.ready.as_ref().map(|p| expand_probe(p, &mut expand));
        service.health = spec.health.as_ref().map(|p| expand_probe(p, &mut expand));
        out.insert(name.clone(), service);
    }
    diags.into_result(out)
}

fn expand_probe(probe: &Probe, expand: &mut impl FnMut(&str) -> String) -> Probe {
    Probe {
        http: probe.http.as_deref().map(&mut *expand),
        json: probe
            .json
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), expand(v))).collect()),
        tcp: probe.tcp.as_deref().map(&mut *expand),
        exec: probe
            .exec
            .as_ref()
            .map(|argv| argv.iter().map(|a| expand(a)).collect()),
        ..probe.clone()
    }
}

/// Validates a role's templates and expansions by rendering them with the sample context
/// ([`context::sample_config`]): missing templates, undefined variables, bad destinations.
/// Returns every problem; writes nothing.
pub fn check_role(role: &LoadedRole, templates: &mut Templates) -> Diagnostics {
    let config = context::sample_config(role);
    let resources = context::sample_resources();
    let sizing = context::sample_sizing();
    let ctx = build_context(&config, &resources, Some(&sizing));
    let mut diags = Diagnostics::default();
    if let Err(d) = render_with(role, &ctx, templates) {
        diags.extend(d);
    }
    if let Err(d) = expand_services(role, &ctx) {
        diags.extend(d);
    }
    diags
}

/// A diagnostic in a role file at the first `needle` after `anchor`.
fn diagnostic_in(file: &Path, anchor: Option<&str>, needle: &str, message: String) -> Diagnostic {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    match locate(&text, anchor, needle) {
        Some((line, column)) => Diagnostic::at(file.display().to_string(), line, column, message),
        None => Diagnostic::new(file.display().to_string(), message),
    }
}
