//! Arbitrary text as a role file (and as a template beside it): loading, validation, rendering
//! with the sample context and expanding the services must never panic or run unbounded.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use sparkvisor::config::role::load_role;
use sparkvisor::render::context::{sample_config, sample_resources, sample_sizing};
use sparkvisor::render::{build_context, expand_services, expand_warnings, render_role};

thread_local! {
    static DIR: Option<PathBuf> = {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let dir = PathBuf::from(base).join(format!("sparkvisor-fuzz-roles-{}", std::process::id()));
        let ok = std::fs::create_dir_all(dir.join("roles")).is_ok()
            && std::fs::create_dir_all(dir.join("templates")).is_ok();
        ok.then_some(dir)
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // First line: a template; the rest: the role file. One directory for every execution (the
    // files are rewritten each time), in /dev/shm when there is one: each execution is then the
    // load and render, not directory creation.
    let Some(dir) = DIR.with(|d| d.clone()) else {
        return;
    };
    let (template, role) = text.split_once('\n').unwrap_or(("", text));
    let roles = dir.join("roles");
    let templates = dir.join("templates");
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
    let _ = expand_warnings(&loaded, &ctx);
});
