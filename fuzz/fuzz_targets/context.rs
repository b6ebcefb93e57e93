//! Arbitrary values in the template context (four settings, a spark_conf key and value, a secret,
//! the notebook's authentication setting), rendered through the all-in-one, notebook, zeppelin and
//! history-server roles' templates (one role per execution, by the input's length), their services
//! and warnings expanded: never a panic, never an unbounded render. The roles and templates are
//! loaded from the repository once, so each execution is only the context and the renders.
#![no_main]

use std::cell::RefCell;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sparkvisor::config::role::{load_role, LoadedRole};
use sparkvisor::config::{Secret, Source, Sourced};
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, expand_services, expand_warnings, render_with, Templates};

thread_local! {
    static LOADED: RefCell<Option<(Vec<LoadedRole>, Templates)>> = RefCell::new({
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let roles: Result<Vec<_>, _> = ["all-in-one", "notebook", "zeppelin", "history-server"]
            .iter()
            .map(|name| load_role(&repo.join("roles"), name))
            .collect();
        match (roles, Templates::load(&repo.join("templates"))) {
            (Ok(roles), Ok(templates)) => Some((roles, templates)),
            _ => None,
        }
    });
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\u{1}');
    let value = parts.next().unwrap_or("").to_string();
    let key = parts.next().unwrap_or("spark.fuzz").to_string();
    let auth = parts.next().unwrap_or("token").to_string();
    LOADED.with(|loaded| {
        let mut loaded = loaded.borrow_mut();
        let Some((roles, templates)) = loaded.as_mut() else {
            panic!("the repository's roles and templates must load");
        };
        // One role per execution, chosen by the input's length (deterministic per input, and kept by
        // the in-place mutations that explore a value): a quarter of the work per execution.
        let Some(role) = roles.get(data.len() % roles.len().max(1)) else {
            return;
        };
        let mut config = sample_config(role);
        for k in [
            "spark.public_dns",
            "spark.work_dir",
            "spark.daemon_java_opts",
            "notebook.root_dir",
        ] {
            config
                .settings
                .insert(k.to_string(), Sourced::new(value.clone(), Source::Default));
        }
        config.settings.insert(
            "notebook.authentication".to_string(),
            Sourced::new(auth.clone(), Source::Default),
        );
        config
            .spark_conf
            .insert(key.clone(), Sourced::new(value.clone(), Source::Default));
        config.secrets.insert(
            "spark.authenticate.secret".to_string(),
            Secret::new(value.clone(), Source::Default),
        );
        let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
        // Accepted or refused with a diagnostic: never a panic or an unbounded render.
        let _ = render_with(role, &ctx, templates);
        let _ = expand_services(role, &ctx);
        let _ = expand_warnings(role, &ctx);
    });
});
