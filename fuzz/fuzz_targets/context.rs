//! Arbitrary values in the template context (four settings, a spark_conf key and value, a secret),
//! rendered through the all-in-one, notebook, zeppelin and history-server roles' templates: never a
//! panic, never an unbounded render.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sparkvisor::config::role::load_role;
use sparkvisor::config::{Secret, Source, Sourced};
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, render_role};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut parts = text.split('\u{1}');
    let value = parts.next().unwrap_or("").to_string();
    let key = parts.next().unwrap_or("spark.fuzz").to_string();
    for role_name in ["all-in-one", "notebook", "zeppelin", "history-server"] {
        let Ok(role) = load_role(&repo.join("roles"), role_name) else {
            return;
        };
        let mut config = sample_config(&role);
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
        config
            .spark_conf
            .insert(key.clone(), Sourced::new(value.clone(), Source::Default));
        config.secrets.insert(
            "spark.authenticate.secret".to_string(),
            Secret::new(value.clone(), Source::Default),
        );
        let ctx = build_context(&config, &sample_resources(), Some(&sample_sizing()));
        // Accepted or refused with a diagnostic: never a panic or an unbounded render.
        let _ = render_role(&role, &ctx, &repo.join("templates"));
    }
});
