//! Bounds on what a template may do, so that a hostile or careless template (a "template bomb") is
//! refused with a clear error instead of exhausting PID 1's stack, memory or time.
//!
//! tera has no limits of its own: a self-including template recurses until the stack overflows,
//! `range(end=100000000)` allocates gigabytes at once, and nested loops or a `{% set s = s ~ s %}`
//! in a loop grow without end. sparkvisor therefore:
//! - refuses, at load, any cycle among includes, imports and macro calls (recursion has no bound
//!   tera could check, and a stack overflow kills PID 1 with every service);
//! - replaces tera's `range` with one that refuses more than [`MAX_RANGE`] elements;
//! - rewrites every parsed template so each loop iteration, each printed value and each `set` is
//!   charged against a per-render [`Budget`] (loop iterations, output bytes, value size, time):
//!   the first charge over a limit fails the render with a message naming the limit;
//! - evaluates `{% if %}` conditions on raw values (see [`raw_conditions`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tera::ast::{Expr, ExprVal, FunctionCall, Node};
use tera::Tera;

/// Most elements one `range(...)` may produce.
pub const MAX_RANGE: u64 = 10_000;
/// Most loop iterations in one render (all loops together).
pub const MAX_ITERATIONS: u64 = 200_000;
/// Most bytes one render may print (values and loop bodies; the static text outside loops is
/// bounded by the template file's own size).
pub const MAX_OUTPUT: u64 = 16 << 20;
/// Longest string one printed or `set` value may be.
pub const MAX_VALUE: u64 = 4 << 20;
/// Longest one render may take.
pub const MAX_TIME: Duration = Duration::from_secs(2);

/// Name of the injected function that charges a loop iteration (never written by authors).
const CHARGE_FN: &str = "__sparkvisor_charge";
/// Name of the injected filter that charges a printed or assigned value.
const VALUE_FILTER: &str = "__sparkvisor_value";

/// What one render has used so far.
#[derive(Debug)]
struct Used {
    started: Instant,
    iterations: u64,
    output: u64,
}

/// The per-render budget shared by the injected function and filter. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Mutex<Used>>);

impl Default for Budget {
    fn default() -> Self {
        Budget(Arc::new(Mutex::new(Used {
            started: Instant::now(),
            iterations: 0,
            output: 0,
        })))
    }
}

impl Budget {
    /// Starts a new render: everything used so far is forgotten.
    pub fn reset(&self) {
        if let Ok(mut used) = self.0.lock() {
            used.started = Instant::now();
            used.iterations = 0;
            used.output = 0;
        }
    }

    fn charge(&self, iterations: u64, bytes: u64) -> tera::Result<()> {
        let mut used = self
            .0
            .lock()
            .map_err(|_| tera::Error::msg("template budget unavailable"))?;
        used.iterations = used.iterations.saturating_add(iterations);
        used.output = used.output.saturating_add(bytes);
        if used.iterations > MAX_ITERATIONS {
            return Err(tera::Error::msg(format!(
                "template bomb refused: more than {MAX_ITERATIONS} loop iterations in one file"
            )));
        }
        if used.output > MAX_OUTPUT {
            return Err(tera::Error::msg(format!(
                "template bomb refused: output over the limit of {MAX_OUTPUT} bytes"
            )));
        }
        if used.started.elapsed() > MAX_TIME {
            return Err(tera::Error::msg(format!(
                "template bomb refused: rendering took longer than the limit of {}s",
                MAX_TIME.as_secs()
            )));
        }
        Ok(())
    }

    /// Registers the bounded `range`, the charge function and the value filter on `tera`.
    pub fn install(&self, tera: &mut Tera) {
        let b = self.clone();
        tera.register_function(CHARGE_FN, Charge(b.clone()));
        tera.register_filter(VALUE_FILTER, ValueCheck(b.clone()));
        tera.register_function("range", Range(b));
    }
}

/// The injected per-iteration charge: one iteration plus the loop body's static text.
struct Charge(Budget);

impl tera::Function for Charge {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let bytes = args.get("bytes").and_then(Value::as_u64).unwrap_or(0);
        self.0.charge(1, bytes)?;
        Ok(Value::String(String::new()))
    }
    fn is_safe(&self) -> bool {
        // Its empty output must not be escaped (`''` in a shell file).
        true
    }
}

/// The injected value check: a string value's length is charged and capped; the value passes on
/// unchanged (and is still escaped: the filter is not "safe").
struct ValueCheck(Budget);

impl tera::Filter for ValueCheck {
    fn filter(&self, value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
        let len = match value {
            Value::String(s) => s.len() as u64,
            Value::Array(a) => a.len() as u64,
            _ => 0,
        };
        if len > MAX_VALUE {
            return Err(tera::Error::msg(format!(
                "template bomb refused: a value over the limit of {MAX_VALUE} bytes"
            )));
        }
        self.0.charge(0, len)?;
        Ok(value.clone())
    }
}

/// tera's `range(start, end, step_by)`, refusing more than [`MAX_RANGE`] elements before
/// allocating anything.
struct Range(Budget);

impl tera::Function for Range {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let arg = |name: &str, default: Option<u64>| -> tera::Result<u64> {
            match args.get(name) {
                Some(v) => v.as_u64().ok_or_else(|| {
                    tera::Error::msg(format!("`range`: {name}={v} is not a non-negative integer"))
                }),
                None => default.ok_or_else(|| tera::Error::msg(format!("`range` needs {name}"))),
            }
        };
        let start = arg("start", Some(0))?;
        let end = arg("end", None)?;
        let step = arg("step_by", Some(1))?;
        if step == 0 {
            return Err(tera::Error::msg("`range`: step_by must not be 0"));
        }
        let count = end.saturating_sub(start).div_ceil(step);
        if count > MAX_RANGE {
            return Err(tera::Error::msg(format!(
                "template bomb refused: range of {count} elements is over the limit of {MAX_RANGE}"
            )));
        }
        self.0.charge(0, count)?;
        let mut out = Vec::new();
        let mut i = start;
        while i < end {
            out.push(Value::from(i));
            i = i.saturating_add(step);
        }
        Ok(Value::Array(out))
    }
}

/// Rewrites every template loaded in `tera` (its body, macros and blocks): conditions on raw
/// values, budget charges in loops, value checks on prints and `set`s.
pub fn instrument(tera: &mut Tera) {
    for template in tera.templates.values_mut() {
        rewrite(&mut template.ast);
        for m in template.macros.values_mut() {
            rewrite(&mut m.body);
        }
        for block in template.blocks.values_mut() {
            rewrite(&mut block.body);
        }
        for chain in template.blocks_definitions.values_mut() {
            for (_, block) in chain.iter_mut() {
                rewrite(&mut block.body);
            }
        }
    }
}

fn value_filter() -> FunctionCall {
    FunctionCall {
        name: VALUE_FILTER.to_string(),
        args: HashMap::new(),
    }
}

fn charge_node(bytes: usize) -> Node {
    let mut args = HashMap::new();
    args.insert(
        "bytes".to_string(),
        Expr::new(ExprVal::Int(i64::try_from(bytes).unwrap_or(i64::MAX))),
    );
    Node::VariableBlock(
        tera::ast::WS::default(),
        Expr::new(ExprVal::FunctionCall(FunctionCall {
            name: CHARGE_FN.to_string(),
            args,
        })),
    )
}

/// Bytes of static text directly in `nodes` (what one pass over them prints at least).
fn text_bytes(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| match n {
            Node::Text(t) | Node::Raw(_, t, _) => t.len(),
            _ => 0,
        })
        .sum()
}

fn rewrite(nodes: &mut [Node]) {
    for node in nodes.iter_mut() {
        match node {
            // Only plain prints: a `safe` last filter (refused by the lint anyway) stays last.
            Node::VariableBlock(_, expr) if !expr.is_marked_safe() => {
                expr.filters.push(value_filter());
            }
            Node::Set(_, set) => set.value.filters.push(value_filter()),
            Node::MacroDefinition(_, m, _) => rewrite(&mut m.body),
            Node::FilterSection(_, f, _) => rewrite(&mut f.body),
            Node::Block(_, b, _) => rewrite(&mut b.body),
            Node::Forloop(_, f, _) => {
                rewrite(&mut f.body);
                let bytes = text_bytes(&f.body);
                f.body.insert(0, charge_node(bytes));
                if let Some(empty) = &mut f.empty_body {
                    rewrite(empty);
                }
            }
            Node::If(i, _) => {
                for (_, cond, body) in i.conditions.iter_mut() {
                    raw_conditions(cond);
                    rewrite(body);
                }
                if let Some((_, body)) = &mut i.otherwise {
                    rewrite(body);
                }
            }
            _ => {}
        }
    }
}

/// Marks every value a condition tests as `safe`, so the test sees the raw value. With autoescape
/// on, tera escapes an identifier before testing it: an empty JSON value becomes `""` and an empty
/// shell value `''`, both truthy, so `{% if secrets.token %}` held for an empty token and
/// `{% if x == "a" %}` compared the escaped text. Emptiness and equality are decided on raw values.
pub fn raw_conditions(expr: &mut Expr) {
    match &mut expr.val {
        ExprVal::Logic(l) => {
            raw_conditions(&mut l.lhs);
            raw_conditions(&mut l.rhs);
        }
        ExprVal::In(i) => {
            raw_conditions(&mut i.lhs);
            raw_conditions(&mut i.rhs);
        }
        ExprVal::Test(t) => t.args.iter_mut().for_each(raw_conditions),
        _ => {}
    }
    if !expr.is_marked_safe() {
        expr.filters.push(FunctionCall {
            name: "safe".to_string(),
            args: HashMap::new(),
        });
    }
}

/// Cycles among includes, macro imports and macro calls: each is reported as the chain of
/// templates (and macros) that leads back to itself. tera would recurse until the stack overflows.
pub fn recursion_problems(tera: &Tera) -> Vec<(String, String)> {
    // Graph nodes: "template" and "template::macro".
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, template) in &tera.templates {
        let imports: HashMap<&str, &str> = template
            .imported_macro_files
            .iter()
            .map(|(file, ns)| (ns.as_str(), file.as_str()))
            .collect();
        let resolve = |ns: &str, m: &str| -> Option<String> {
            if ns == "self" {
                Some(format!("{name}::{m}"))
            } else {
                imports.get(ns).map(|file| format!("{file}::{m}"))
            }
        };
        let mut out = BTreeSet::new();
        calls(&template.ast, &resolve, &mut out);
        edges.entry(name.clone()).or_default().extend(out);
        for (mname, m) in &template.macros {
            let mut out = BTreeSet::new();
            calls(&m.body, &resolve, &mut out);
            edges
                .entry(format!("{name}::{mname}"))
                .or_default()
                .extend(out);
        }
    }
    let mut problems = Vec::new();
    let mut reported = BTreeSet::new();
    for start in edges.keys() {
        if let Some(cycle) = find_cycle(&edges, start) {
            let first = cycle.first().cloned().unwrap_or_default();
            let template = first.split("::").next().unwrap_or_default().to_string();
            if reported.insert(template.clone()) {
                problems.push((
                    template,
                    format!(
                        "recursion refused (it would overflow PID 1's stack): {}",
                        cycle.join(" -> ")
                    ),
                ));
            }
        }
    }
    problems
}

/// The calls and includes in `nodes`, as graph nodes.
fn calls(
    nodes: &[Node],
    resolve: &dyn Fn(&str, &str) -> Option<String>,
    out: &mut BTreeSet<String>,
) {
    let expr_calls = |e: &Expr, out: &mut BTreeSet<String>| expr_macro_calls(e, resolve, out);
    for node in nodes {
        match node {
            Node::Include(_, names, _) => out.extend(names.iter().cloned()),
            Node::VariableBlock(_, e) => expr_calls(e, out),
            Node::Set(_, s) => expr_calls(&s.value, out),
            Node::MacroDefinition(_, m, _) => calls(&m.body, resolve, out),
            Node::FilterSection(_, f, _) => calls(&f.body, resolve, out),
            Node::Block(_, b, _) => calls(&b.body, resolve, out),
            Node::Forloop(_, f, _) => {
                expr_calls(&f.container, out);
                calls(&f.body, resolve, out);
                if let Some(empty) = &f.empty_body {
                    calls(empty, resolve, out);
                }
            }
            Node::If(i, _) => {
                for (_, cond, body) in &i.conditions {
                    expr_calls(cond, out);
                    calls(body, resolve, out);
                }
                if let Some((_, body)) = &i.otherwise {
                    calls(body, resolve, out);
                }
            }
            _ => {}
        }
    }
}

fn expr_macro_calls(
    e: &Expr,
    resolve: &dyn Fn(&str, &str) -> Option<String>,
    out: &mut BTreeSet<String>,
) {
    if let ExprVal::MacroCall(m) = &e.val {
        if let Some(target) = resolve(&m.namespace, &m.name) {
            out.insert(target);
        }
    }
    let mut sub = |e: &Expr| expr_macro_calls(e, resolve, out);
    match &e.val {
        ExprVal::MacroCall(m) => m.args.values().for_each(&mut sub),
        ExprVal::Math(m) => {
            sub(&m.lhs);
            sub(&m.rhs);
        }
        ExprVal::Logic(l) => {
            sub(&l.lhs);
            sub(&l.rhs);
        }
        ExprVal::In(i) => {
            sub(&i.lhs);
            sub(&i.rhs);
        }
        ExprVal::Test(t) => t.args.iter().for_each(&mut sub),
        ExprVal::FunctionCall(f) => f.args.values().for_each(&mut sub),
        ExprVal::Array(a) => a.iter().for_each(&mut sub),
        _ => {}
    }
    for f in &e.filters {
        f.args.values().for_each(&mut sub);
    }
}

/// A path from `start` back to `start`, if any (iterative DFS: the graph may be deep).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(String, Vec<String>)> = vec![(start.to_string(), vec![start.to_string()])];
    while let Some((node, path)) = stack.pop() {
        for next in edges.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> (Tera, Budget) {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![""]);
        tera.set_escape_fn(crate::render::escape::json);
        tera.add_raw_templates(files.iter().copied()).unwrap();
        let budget = Budget::default();
        budget.install(&mut tera);
        instrument(&mut tera);
        (tera, budget)
    }

    fn render(files: &[(&str, &str)], ctx: serde_json::Value) -> Result<String, String> {
        let (tera, budget) = load(files);
        budget.reset();
        let ctx = tera::Context::from_value(ctx).unwrap();
        tera.render(files[0].0, &ctx)
            .map_err(|e| crate::render::templates::error_chain(&e))
    }

    #[test]
    fn conditions_test_raw_values() {
        let t = [(
            "t.json",
            "{% if a %}set{% else %}unset{% endif %}|{% if b == \"x\" %}eq{% endif %}|{{ b }}",
        )];
        assert_eq!(
            render(&t, serde_json::json!({"a": "", "b": "x"})).unwrap(),
            "unset|eq|\"x\""
        );
        assert_eq!(
            render(&t, serde_json::json!({"a": "1", "b": "y"})).unwrap(),
            "set||\"y\""
        );
    }

    #[test]
    fn bombs_are_refused() {
        let e = render(
            &[("t", "{% for i in range(end=100000000) %}x{% endfor %}")],
            serde_json::json!({}),
        )
        .unwrap_err();
        assert!(e.contains("range of 100000000"), "{e}");
        let e = render(
            &[("t", "{% for i in range(end=10000) %}{% for j in range(end=10000) %}x{% endfor %}{% endfor %}")],
            serde_json::json!({}),
        )
        .unwrap_err();
        assert!(e.contains("template bomb refused"), "{e}");
        let e = render(
            &[("t", "{% set s = \"xxxxxxxxxxxxxxxx\" %}{% for i in range(end=100) %}{% set_global s = s ~ s %}{% endfor %}{{ s }}")],
            serde_json::json!({}),
        )
        .unwrap_err();
        assert!(e.contains("a value over the limit"), "{e}");
    }

    #[test]
    fn recursion_is_found() {
        let (tera, _) = load(&[
            ("a", "{% include \"b\" %}"),
            ("b", "{% include \"a\" %}"),
            ("c", "ok"),
        ]);
        let p = recursion_problems(&tera);
        assert_eq!(p.len(), 2, "each template of the cycle is named: {p:?}");
        assert!(p[0].1.contains("a -> b -> a"), "{p:?}");
        let (tera, _) = load(&[(
            "m",
            "{% macro f(n) %}{{ self::f(n=n) }}{% endmacro f %}{{ self::f(n=1) }}",
        )]);
        let p = recursion_problems(&tera);
        assert!(p[0].1.contains("m::f -> m::f"), "{p:?}");
    }
}
