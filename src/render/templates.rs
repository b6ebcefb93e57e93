//! The templates directory loaded into one tera instance: only files under that directory can be
//! rendered or included (tera resolves `{% include %}` among loaded templates only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tera::ast::{ExprVal, Node};
use tera::{Context, Tera};

use super::bounds::{self, Budget};
use super::escape::Format;
use super::parse;
use crate::error::{Diagnostic, Diagnostics};

/// Every template under one directory, parsed.
pub struct Templates {
    tera: Tera,
    budget: Budget,
    dir: PathBuf,
    sources: BTreeMap<String, String>,
}

impl Templates {
    /// Loads and parses every file under `dir` (recursively; names use `/`). Reports every syntax
    /// error with its template file, line and column.
    pub fn load(dir: &Path) -> Result<Templates, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut sources = BTreeMap::new();
        let root = match dir.canonicalize() {
            Ok(r) => r,
            Err(e) => {
                return Err(Diagnostic::new(
                    dir.display().to_string(),
                    format!("cannot read the templates directory: {e}"),
                )
                .into())
            }
        };
        collect(dir, &root, &root, &mut sources, &mut diags);
        let mut tera = Tera::default();
        tera.register_filter("number", number);
        // Every template is escaped; the escape function is chosen per render by format.
        tera.autoescape_on(vec![""]);
        let longest = sources.values().map(String::len).max().unwrap_or(0);
        let parsed = parse::bounded(longest, || {
            tera.add_raw_templates(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        });
        if let Err(e) = parsed {
            // Parse each on its own so every syntax error is reported, not just the first.
            for (name, text) in &sources {
                let mut scratch = Tera::default();
                if let Err(e) = parse::bounded(text.len(), || scratch.add_raw_template(name, text))
                {
                    let message = parse::explain_limit(error_chain(&e), text.len());
                    // A missing `extends` parent is not this file's syntax error.
                    if !message.contains("doesn't exist") {
                        diags.push(template_diagnostic(dir, name, text, &message));
                    }
                }
            }
            if diags.is_empty() {
                diags.push(Diagnostic::new(dir.display().to_string(), error_chain(&e)));
            }
            return Err(diags);
        }
        for (name, text) in &sources {
            if let Ok(template) = tera.get_template(name) {
                let mut problems = Vec::new();
                lint(&template.ast, &mut problems);
                for (needle, why) in problems {
                    let file = dir.join(name).display().to_string();
                    diags.push(match crate::config::source::find_in(text, None, &needle) {
                        Some((line, column)) => Diagnostic::at(file, line, column, why),
                        None => Diagnostic::new(file, why),
                    });
                }
            }
        }
        for (name, why) in bounds::recursion_problems(&tera) {
            diags.push(Diagnostic::new(dir.join(name).display().to_string(), why));
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let budget = Budget::default();
        budget.install(&mut tera);
        bounds::instrument(&mut tera);
        Ok(Templates {
            tera,
            budget,
            dir: dir.to_path_buf(),
            sources,
        })
    }

    /// The directory the templates came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when a template of this name was loaded.
    pub fn contains(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// Template names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Renders `name` with `format`'s escaping applied to every substituted string value.
    pub fn render(
        &mut self,
        name: &str,
        format: Format,
        context: &Value,
    ) -> Result<String, Diagnostic> {
        let ctx = Context::from_value(context.clone()).map_err(|e| {
            Diagnostic::new(
                self.path_of(name),
                format!("invalid context: {}", error_chain(&e)),
            )
        })?;
        self.tera.set_escape_fn(format.escape_fn());
        self.budget.reset();
        self.tera.render(name, &ctx).map_err(|e| {
            let message = error_chain(&e);
            // The failing template may be an included one: tera names it last.
            let failing = rendering_template(&message).unwrap_or(name).to_string();
            let text = self.sources.get(&failing).map_or("", String::as_str);
            template_diagnostic(&self.dir, &failing, text, &message)
        })
    }

    fn path_of(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Finds `{{ }}` blocks tera would print without the format's escaping: a string concatenation
/// (`{{ a ~ b }}`: tera does not escape it), `| safe`, and a list printed whole (`{{ peers.master }}`).
/// Each problem is `(text to locate, message)`.
fn lint(nodes: &[Node], problems: &mut Vec<(String, String)>) {
    for node in nodes {
        match node {
            Node::VariableBlock(_, expr) => {
                if matches!(expr.val, ExprVal::StringConcat(_)) && expr.filters.is_empty() {
                    problems.push((
                        "~".into(),
                        "`{{ a ~ b }}` is not escaped by tera: `{% set v = a ~ b %}` then `{{ v }}`".into(),
                    ));
                }
                if expr.filters.iter().any(|f| f.name == "safe") {
                    problems.push((
                        "safe".into(),
                        "`| safe` would insert a value unescaped; values are escaped for the file's format".into(),
                    ));
                }
                if let ExprVal::Ident(ident) = &expr.val {
                    let list = ident == "peers"
                        || ident.starts_with("peers.")
                        || ident.starts_with("peers[")
                        || ident == "resources.sources";
                    if list && expr.filters.is_empty() {
                        problems.push((
                            ident.clone(),
                            format!("`{{{{ {ident} }}}}` prints a list unescaped: use `| join(sep=\",\")`"),
                        ));
                    }
                }
            }
            Node::MacroDefinition(_, m, _) => lint(&m.body, problems),
            Node::FilterSection(_, f, _) => lint(&f.body, problems),
            Node::Block(_, b, _) => lint(&b.body, problems),
            Node::Forloop(_, f, _) => {
                lint(&f.body, problems);
                if let Some(empty) = &f.empty_body {
                    lint(empty, problems);
                }
            }
            Node::If(i, _) => {
                for (_, _, body) in &i.conditions {
                    lint(body, problems);
                }
                if let Some((_, body)) = &i.otherwise {
                    lint(body, problems);
                }
            }
            _ => {}
        }
    }
}

/// The `number` filter: a string or number that must be an integer, printed unescaped (JSON ports
/// and counts). Unlike tera's `int`, anything else is an error, never a silent 0.
fn number(value: &Value, _args: &std::collections::HashMap<String, Value>) -> tera::Result<Value> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(|n| Value::Number(n.into()))
            .map_err(|_| tera::Error::msg(format!("`number`: {s:?} is not an integer"))),
        other => Err(tera::Error::msg(format!(
            "`number`: {other} is not an integer"
        ))),
    }
}

/// The name a single expanded string is parsed under (tera's own one-off name, so messages read
/// the same as before).
const ONE_OFF: &str = "__tera_one_off";

/// Expands `{{ }}` in single strings without any escaping (argv, paths, environment values): one
/// tera instance and one context for all the strings of a role, built on first use.
pub struct Expander<'a> {
    context: &'a Value,
    engine: Option<(Tera, Context, Budget)>,
}

impl<'a> Expander<'a> {
    /// An expander over `context`.
    pub fn new(context: &'a Value) -> Self {
        Self {
            context,
            engine: None,
        }
    }

    /// `input` with its `{{ }}` expanded; a string without tera markers is returned as it is.
    pub fn expand(&mut self, input: &str) -> Result<String, String> {
        if !input.contains("{{") && !input.contains("{%") && !input.contains("{#") {
            return Ok(input.to_string());
        }
        if self.engine.is_none() {
            let ctx = Context::from_value(self.context.clone()).map_err(|e| error_chain(&e))?;
            let mut tera = Tera::default();
            tera.autoescape_on(Vec::new());
            let budget = Budget::default();
            budget.install(&mut tera);
            self.engine = Some((tera, ctx, budget));
        }
        let Some((tera, ctx, budget)) = self.engine.as_mut() else {
            return Err("no template engine".into());
        };
        if let Some(template) = parse::memo_get(input) {
            // What `add_raw_template` would add: only one-offs that were added without error are
            // kept, and those have no parent (`extends` names a template the expander lacks), so
            // the inheritance chain is their own and needs no rebuilding.
            tera.templates.insert(ONE_OFF.to_string(), template);
        } else {
            // Parsed as a named template (not `render_str`) so it can be bounded like a file.
            parse::bounded(input.len(), || tera.add_raw_template(ONE_OFF, input)).map_err(|e| {
                summarize(&tidy(&parse::explain_limit(error_chain(&e), input.len())))
            })?;
            if let Some((_, why)) = bounds::recursion_problems(tera).into_iter().next() {
                return Err(why);
            }
            bounds::instrument(tera);
            if let Some(template) = tera.templates.get(ONE_OFF) {
                parse::memo_put(input, template);
            }
        }
        budget.reset();
        tera.render(ONE_OFF, ctx)
            .map_err(|e| summarize(&tidy(&error_chain(&e))))
    }
}

/// Expands `{{ }}` in one string without any escaping (see [`Expander`] for many strings).
pub fn expand_str(input: &str, context: &Value) -> Result<String, String> {
    Expander::new(context).expand(input)
}

/// Reads every file under `dir` (inside the canonical `root`); diagnostics name paths under `shown`,
/// the directory as the user gave it.
fn collect(
    shown: &Path,
    root: &Path,
    dir: &Path,
    sources: &mut BTreeMap<String, String>,
    diags: &mut Diagnostics,
) {
    let display = |p: &Path| {
        p.strip_prefix(root)
            .map_or_else(|_| p.to_path_buf(), |rel| shown.join(rel))
            .display()
            .to_string()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::new(display(dir), format!("cannot read: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        // Symlinks may point anywhere: only what resolves under the directory is a template.
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if !real.starts_with(root) {
            diags.push(Diagnostic::new(
                display(&path),
                "points outside the templates directory",
            ));
            continue;
        }
        if real.is_dir() {
            collect(shown, root, &path, sources, diags);
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        match crate::config::limits::read_text(&path, crate::config::limits::InputKind::Template) {
            Ok(text) => {
                sources.insert(name, text);
            }
            Err(e) => diags.push(Diagnostic::new(
                display(&path),
                format!("cannot read the template: {e}"),
            )),
        }
    }
}

/// A tera error with its causes, one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Shortens tera's messages: drops the one-off template's internal name and the code excerpt.
fn tidy(message: &str) -> String {
    message
        .replace(" while rendering '__tera_one_off'", "")
        .replace("Failed to render '__tera_one_off': ", "")
        .replace("Failed to parse '__tera_one_off': ", "")
}

/// The template tera was rendering when it failed (`... while rendering 'NAME'` or
/// `Failed to render 'NAME'`, the innermost one).
fn rendering_template(message: &str) -> Option<&str> {
    let key = if message.contains("while rendering '") {
        "while rendering '"
    } else {
        "Failed to render '"
    };
    let start = message.rfind(key)? + key.len();
    let rest = message.get(start..)?;
    rest.get(..rest.find('\'')?)
}

/// A diagnostic in template `name`: at tera's ` --> L:C` for parse errors, else at the first
/// mention of the variable tera could not find.
fn template_diagnostic(dir: &Path, name: &str, text: &str, message: &str) -> Diagnostic {
    let file = dir.join(name).display().to_string();
    let summary = summarize(message);
    if let Some((line, column)) = parse_position(message) {
        return Diagnostic::at(file, line, column, summary);
    }
    if let Some(var) = missing_variable(message) {
        if let Some((line, column)) = crate::config::source::find_in(text, None, var) {
            return Diagnostic::at(file, line, column, summary);
        }
    }
    if let Some(included) = missing_include(message) {
        let summary =
            format!("includes {included:?}, which is not a template under the templates directory");
        return match crate::config::source::find_in(text, None, included) {
            Some((line, column)) => Diagnostic::at(file, line, column, summary),
            None => Diagnostic::new(file, summary),
        };
    }
    Diagnostic::new(file, summary)
}

/// One readable line out of tera's multi-line message.
fn summarize(message: &str) -> String {
    if let Some(var) = missing_variable(message) {
        return format!("undefined variable `{var}`");
    }
    // Parse errors: "Failed to parse 'x': --> 1:5\n  |\n1 | {{ a b }}\n  |      ^---\n  |\n  = expected ..."
    if let Some(expected) = message.lines().find_map(|l| l.trim().strip_prefix("= ")) {
        return format!("template syntax error: {expected}");
    }
    message.lines().next().unwrap_or(message).trim().to_string()
}

/// `Template '[a, b]' not found` (tera's message for a failed `{% include %}`) → `a`.
fn missing_include(message: &str) -> Option<&str> {
    let start = message.find("Template '[")? + "Template '[".len();
    let rest = message.get(start..)?;
    let end = rest.find("]' not found")?;
    rest.get(..end)?.split(", ").next()
}

fn missing_variable(message: &str) -> Option<&str> {
    let start = message.find("Variable `")? + "Variable `".len();
    let rest = message.get(start..)?;
    let end = rest.find("` not found")?;
    rest.get(..end)
}

fn parse_position(message: &str) -> Option<(usize, usize)> {
    let start = message.find("--> ")? + 4;
    let rest = message.get(start..)?;
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ':'))?;
    let (line, column) = rest.get(..end)?.split_once(':')?;
    Some((line.parse().ok()?, column.parse().ok()?))
}
