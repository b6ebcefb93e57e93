//! Arbitrary text as a role file (and as a template beside it): loading, validation, rendering
//! with the sample context and expanding the services must never panic or run unbounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkvisor::config::role::load_role;
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, expand_services, render_role};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // First line: a template; the rest: the role file.
    let (template, role) = text.split_once('\n').unwrap_or(("", text));
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let roles = dir.path().join("roles");
    let templates = dir.path().join("templates");
    if std::fs::create_dir_all(&roles).is_err() || std::fs::create_dir_all(&templates).is_err() {
        return;
    }
    if std::fs::write(roles.join("r.yaml"), role).is_err()
        || std::fs::write(templates.join("t.sh"), template).is_err()
    {
        return;
    }
    let Ok(loaded) = load_role(&roles, "r") else {
        return;
    };
    let ctx = build_context(
        &sample_config(&loaded),
        &sample_resources(),
        Some(&sample_sizing()),
    );
    let _ = render_role(&loaded, &ctx, &templates);
    let _ = expand_services(&loaded, &ctx);
});
