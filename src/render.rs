//! Templates to files: builds the template context from the resolved config, renders each role file
//! with escaping that fits its format, and writes it atomically. Starts nothing.
//!
//! - [`bounds`]: limits on what a template may do (recursion, loops, output, time);
//! - [`context`]: the template context ([`build_context`]) and the sample inputs `check` uses;
//! - [`escape`]: one escape function per format, applied to every `{{ }}` string value;
//! - [`templates`]: the templates directory loaded into tera (includes only from there);
//! - [`mod@write`]: atomic writes with mode and owner, mount points left alone.

pub mod bounds;
pub mod context;
pub mod escape;
pub mod parse;
pub mod paths;
pub mod templates;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use context::build_context;
pub use escape::Format;
pub use templates::Templates;
pub use write::{write_files, RenderError, WriteReport};

use crate::config::role::{
    parse_octal, template_name_problem, LoadedRole, MergeMode, OneOf, Probe, WaitFor,
};
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
    /// How it combines with a user's file at the same place in the Spark conf dir (`None`: the
    /// agent's alone); see [`merge_mode`].
    pub merge: Option<MergeMode>,
}

/// The merge mode of a file of `format`: the role's `merge:` when it fits the format, else the
/// format's default (`keys` for properties and XML, `append` for shell, none for the rest).
pub fn merge_mode(format: Format, asked: Option<MergeMode>) -> Result<Option<MergeMode>, String> {
    let default = match format {
        Format::Properties | Format::Xml => Some(MergeMode::Keys),
        Format::Shell => Some(MergeMode::Append),
        Format::Json | Format::Plain => None,
    };
    match (asked, format) {
        (None, _) => Ok(default),
        (Some(MergeMode::Keys), Format::Properties | Format::Xml)
        | (Some(MergeMode::Append), Format::Shell)
        | (Some(MergeMode::None), Format::Properties | Format::Shell) => Ok(asked),
        (Some(mode), _) => Err(format!(
            "`merge: {}` does not fit a {format:?} file (keys: .properties, .conf, .xml; append: \
             .sh; none: .properties, .conf, .sh, whose `#` comments let sparkvisor recognise the \
             file it wrote)",
            match mode {
                MergeMode::Keys => "keys",
                MergeMode::Append => "append",
                MergeMode::None => "none",
            }
        )),
    }
}

/// Where each `render:` entry of `role` goes (its `to` expanded with `context`); entries whose
/// `to` does not expand are left out (rendering reports them).
pub fn destinations(role: &LoadedRole, context: &Value) -> Vec<PathBuf> {
    let mut expander = templates::Expander::new(context);
    role.def
        .render
        .iter()
        .filter_map(|spec| expander.expand(&spec.to).ok())
        .filter(|to| to.starts_with('/'))
        .map(|to| paths::normalize(Path::new(&to)))
        .collect()
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

/// True when `needle` occurs in `haystack` as a whole value: not as part of a longer word (a short
/// secret such as `ab` must not make every file that contains "about" a secret file).
fn contains_whole(haystack: &str, needle: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let starts_word = needle.chars().next().is_some_and(|c| word(Some(c)));
    let ends_word = needle.chars().last().is_some_and(|c| word(Some(c)));
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack.get(..at).and_then(|b| b.chars().last());
        let after = haystack
            .get(at + needle.len()..)
            .and_then(|a| a.chars().next());
        let joined_before = starts_word && word(before);
        let joined_after = ends_word && word(after);
        !(joined_before || joined_after)
    })
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
    let mut expander = templates::Expander::new(context);
    for (i, spec) in role.def.render.iter().enumerate() {
        let role_file = role.render_files.get(i).unwrap_or(&role.file);
        let mut problem = |needle: &str, message: String| {
            diags.push(role.diagnostic_in(role_file, Some(&spec.template), needle, message));
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
        let to = match expander.expand(&spec.to) {
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
        let merge = match merge_mode(format, spec.merge) {
            Ok(merge) => merge,
            Err(why) => {
                problem("merge", why);
                continue;
            }
        };
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
                .any(|s| contains_whole(&contents, s) || contents.contains(&escape(s)));
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
        let owner = match owner_spec.map(|o| expander.expand(&o)) {
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                diags.push(role.diagnostic_in(
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
            // Normalised here, once: `check`, `inspect`, `render --out` and `run` all see the
            // path `run` writes (`..` applied lexically, never through a link).
            path: paths::normalize(Path::new(&to)),
            mode,
            owner,
            contents,
            secret,
            template: spec.template.clone(),
            merge,
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
    let mut expander = templates::Expander::new(context);
    for (name, spec) in &role.def.services {
        let file = role.file_of_service(name);
        let anchor = format!("{name}:");
        let mut expand = |s: &str| -> String {
            match expander.expand(s) {
                Ok(v) if v.contains('\0') => {
                    diags.push(role.diagnostic_in(
                        file,
                        Some(&anchor),
                        s,
                        format!("{s:?} expands to a value with a NUL byte"),
                    ));
                    v
                }
                Ok(v) => v,
                Err(e) => {
                    diags.push(role.diagnostic_in(file, Some(&anchor), s, e));
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
        if let Some(drain) = service.stop.drain.as_mut() {
            drain.until = drain.until.as_ref().map(|p| expand_probe(p, &mut expand));
        }
        service.wait_for = spec.wait_for.as_ref().map(|w| WaitFor {
            tcp: w.tcp.iter().map(|a| expand(a)).collect(),
            http: w.http.iter().map(|a| expand(a)).collect(),
            ..w.clone()
        });
        if let Some(Err(e)) = service.wait_for.as_ref().map(WaitFor::targets) {
            diags.push(role.diagnostic_in(
                file,
                Some(&anchor),
                "wait_for",
                format!("service {name}: {e}"),
            ));
        }
        out.insert(name.clone(), service);
    }
    diags.into_result(out)
}

fn expand_probe(probe: &Probe, expand: &mut impl FnMut(&str) -> String) -> Probe {
    Probe {
        http: probe.http.as_deref().map(&mut *expand),
        json: probe.json.as_ref().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), OneOf(v.0.iter().map(|x| expand(x)).collect())))
                .collect()
        }),
        tcp: probe.tcp.as_deref().map(&mut *expand),
        exec: probe
            .exec
            .as_ref()
            .map(|argv| argv.iter().map(|a| expand(a)).collect()),
        ..probe.clone()
    }
}

/// The role's `warnings` expanded with `context`; those that expand to blank text are left out.
pub fn expand_warnings(role: &LoadedRole, context: &Value) -> Result<Vec<String>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut out = Vec::new();
    let mut expander = templates::Expander::new(context);
    for warning in &role.def.warnings {
        match expander.expand(warning) {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => out.push(text.trim().to_string()),
            Err(e) => diags.push(role.diagnostic_in(
                &role.file,
                Some("warnings"),
                warning,
                format!("`warnings`: {e}"),
            )),
        }
    }
    diags.into_result(out)
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
    if let Err(d) = expand_warnings(role, &ctx) {
        diags.extend(d);
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::role::{RenderSpec, RoleDef};

    fn role(render: Vec<RenderSpec>, services_yaml: &str) -> LoadedRole {
        let services: BTreeMap<String, ServiceSpec> = serde_yaml::from_str(services_yaml).unwrap();
        LoadedRole {
            name: "t".into(),
            file: PathBuf::from("/nonexistent/t.yaml"),
            render_files: render
                .iter()
                .map(|_| PathBuf::from("/nonexistent/t.yaml"))
                .collect(),
            service_files: BTreeMap::new(),
            sources: BTreeMap::new(),
            def: RoleDef {
                description: String::new(),
                include: Vec::new(),
                warnings: Vec::new(),
                defaults: BTreeMap::new(),
                render,
                services,
                adjust: BTreeMap::new(),
            },
        }
    }

    fn spec(template: &str, to: &str) -> RenderSpec {
        RenderSpec {
            template: template.into(),
            to: to.into(),
            mode: None,
            owner: None,
            secret: false,
            merge: None,
        }
    }

    fn templates(files: &[(&str, &str)]) -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let t = Templates::load(dir.path()).unwrap();
        (dir, t)
    }

    fn ctx() -> Value {
        serde_json::json!({
            "spark": {"user": "spark", "home": "/opt/spark"},
            "secrets": {"spark.authenticate.secret": "top secret"},
            "peers": {"master": ["m1", "m2"]},
        })
    }

    #[test]
    fn a_file_holding_a_secret_is_secret_even_unmarked() {
        let (_d, mut t) = templates(&[
            ("a.conf", "s {{ secrets[\"spark.authenticate.secret\"] }}\n"),
            ("b.conf", "u {{ spark.user }}\n"),
        ]);
        let mut marked = spec("b.conf", "/x/b.conf");
        marked.mode = Some("0644".into());
        marked.secret = true;
        let r = role(
            vec![spec("a.conf", "/x/a.conf"), marked],
            "svc: {command: [x], user: '{{ spark.user }}'}",
        );
        let files = render_with(&r, &ctx(), &mut t).unwrap();
        // Escaped form (`top\ secret`) detected; default owner: the service user, expanded.
        assert_eq!(files[0].contents, "s top\\ secret\n");
        assert!(files[0].secret);
        assert_eq!(files[0].mode, 0o600);
        assert_eq!(files[0].owner.as_deref(), Some("spark"));
        // An explicit mode cannot make a secret file readable by others.
        assert!(files[1].secret);
        assert_eq!(files[1].mode, 0o600);
    }

    #[test]
    fn plain_files_default_to_0644_and_no_owner() {
        let (_d, mut t) = templates(&[("b.conf", "u {{ spark.user }}\n")]);
        let r = role(vec![spec("b.conf", "{{ spark.home }}/conf/b.conf")], "{}");
        let files = render_with(&r, &ctx(), &mut t).unwrap();
        assert_eq!(files[0].path, PathBuf::from("/opt/spark/conf/b.conf"));
        assert_eq!((files[0].mode, files[0].owner.clone()), (0o644, None));
    }

    #[test]
    fn merge_modes_default_by_format_and_must_fit_it() {
        assert_eq!(
            merge_mode(Format::Properties, None),
            Ok(Some(MergeMode::Keys))
        );
        assert_eq!(merge_mode(Format::Xml, None), Ok(Some(MergeMode::Keys)));
        assert_eq!(merge_mode(Format::Shell, None), Ok(Some(MergeMode::Append)));
        assert_eq!(merge_mode(Format::Json, None), Ok(None));
        assert_eq!(
            merge_mode(Format::Properties, Some(MergeMode::None)),
            Ok(Some(MergeMode::None))
        );
        // `none` needs `#` comments to find the agent's own file again; keys need keys.
        for (format, mode) in [
            (Format::Xml, MergeMode::None),
            (Format::Shell, MergeMode::Keys),
            (Format::Json, MergeMode::None),
            (Format::Plain, MergeMode::Append),
        ] {
            assert!(
                merge_mode(format, Some(mode)).is_err(),
                "{format:?} {mode:?}"
            );
        }
        let (_d, mut t) = templates(&[("e.sh", "A=1\n")]);
        let mut keys = spec("e.sh", "/x/e.sh");
        keys.merge = Some(MergeMode::Keys);
        let err = render_with(&role(vec![keys], "{}"), &ctx(), &mut t)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`merge: keys` does not fit a Shell file"),
            "{err}"
        );
    }

    #[test]
    fn destinations_must_be_absolute_and_of_the_same_format() {
        let (_d, mut t) = templates(&[("b.conf", "x\n")]);
        let r = role(
            vec![spec("b.conf", "relative/b.conf"), spec("b.conf", "/x/b.sh")],
            "{}",
        );
        let err = render_with(&r, &ctx(), &mut t).unwrap_err().to_string();
        assert!(err.contains("absolute path"), "{err}");
        assert!(err.contains("another format"), "{err}");
    }

    #[test]
    fn unescaped_expressions_are_rejected_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let bad = [
            ("concat.sh", "A={{ \"x\" ~ spark.user }}\n"),
            ("safe.sh", "A={{ spark.user | safe }}\n"),
            ("list.sh", "A={{ peers.master }}\n"),
        ];
        for (name, text) in bad {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::fs::write(
            dir.path().join("ok.sh"),
            "A={{ peers.master | join(sep=\",\") }}\n",
        )
        .unwrap();
        let err = Templates::load(dir.path()).err().unwrap();
        assert_eq!(err.0.len(), 3, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("concat.sh:1:")
                && text.contains("safe.sh:1:")
                && text.contains("list.sh:1:"),
            "{text}"
        );
        assert!(!text.contains("ok.sh"), "{text}");
    }

    #[test]
    fn joined_lists_are_escaped() {
        let (_d, mut t) = templates(&[("l.sh", "M={{ peers.master | join(sep=\" \") }}\n")]);
        let out = t.render("l.sh", Format::Shell, &ctx()).unwrap();
        assert_eq!(out, "M='m1 m2'\n");
    }

    #[test]
    fn number_filter_is_strict() {
        let (_d, mut t) = templates(&[("n.json", "{{ p | number }}")]);
        let ok = t.render("n.json", Format::Json, &serde_json::json!({"p": "8888"}));
        assert_eq!(ok.unwrap(), "8888");
        let bad = t.render("n.json", Format::Json, &serde_json::json!({"p": "88x"}));
        assert!(bad.unwrap_err().message.contains("not an integer"));
    }

    #[test]
    fn service_strings_expand_without_escaping() {
        let r = role(
            vec![],
            "svc: {command: ['{{ spark.home }}/bin/x', \"it's {{ spark.user }}\"], environment: {A: '{{ spark.user }}'}, ready: {exec: ['{{ spark.home }}']}}",
        );
        let services = expand_services(&r, &ctx()).unwrap();
        let svc = &services["svc"];
        assert_eq!(svc.command, ["/opt/spark/bin/x", "it's spark"]);
        assert_eq!(svc.environment["A"], "spark");
        assert_eq!(
            svc.ready.as_ref().unwrap().exec.as_ref().unwrap(),
            &["/opt/spark"]
        );
    }
}

#[cfg(test)]
mod whole_value_tests {
    use super::contains_whole;

    #[test]
    fn secrets_match_whole_values_only() {
        assert!(contains_whole("spark.authenticate.secret=ab\n", "ab"));
        assert!(contains_whole("X='ab'", "ab"));
        assert!(!contains_whole("about the cabinet", "ab"));
        assert!(contains_whole("k=a-b", "a-b"));
    }
}
