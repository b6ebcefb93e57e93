//! Init scripts, as bitnami's `/docker-entrypoint-initdb.d`: the executable files of a directory
//! (`init.dir`, env `SPARKVISOR_INIT_DIR`, default [`DEFAULT_DIR`]) run one after the other, in
//! file-name order, before any of the role's services starts.
//!
//! Each script becomes a one-shot supervised service (`init-NN-<name>`: `restart: never`,
//! critical, run as `spark.user` with the services' environment), so its output goes to the logs
//! and `sparkvisor logs` like any service's, and the one `waitpid` in the reaper sees it end. Script
//! N+1 starts after script N exited 0; every role service starts after the last one. A script that
//! fails (non-zero exit or a signal) fails for good, and the container stops with its exit code
//! before any role service has started. Files that are hidden (`.name`), not regular or not
//! executable are skipped with a warning. They run on every start of the container (make them
//! idempotent), never twice in one start.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::role::ServiceSpec;
use crate::config::ResolvedConfig;
use crate::error::Diagnostic;

/// bitnami's directory, where users of their images already mount scripts.
pub const DEFAULT_DIR: &str = "/docker-entrypoint-initdb.d";

/// The init script directory of this node: setting `init.dir`, else [`DEFAULT_DIR`].
pub fn dir(config: &ResolvedConfig) -> PathBuf {
    config
        .settings
        .get("init.dir")
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), |v| PathBuf::from(&v.value))
}

/// The scripts to run, in order: executable regular files (symlinks followed), not hidden, sorted
/// by file name (bytes). A missing directory means none; an unreadable one is an error.
pub fn find(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Diagnostic::new(
                dir.display().to_string(),
                format!("cannot read the init script directory: {e}"),
            ))
        }
    };
    let mut scripts = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => scripts.push(path),
            Ok(_) => log::warn!(
                "init script {}: skipped (not an executable file)",
                path.display()
            ),
            Err(e) => log::warn!("init script {}: skipped ({e})", path.display()),
        }
    }
    scripts.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(scripts)
}

/// `init-NN-<file name>` with the name reduced to `a-z 0-9 - _ .` (status and logs show it).
fn service_name(index: usize, script: &Path) -> String {
    let file = script
        .file_name()
        .map(|f| f.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let clean: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("init-{:02}-{clean}", index + 1)
}

/// Adds one one-shot service per script to `services`, chained in order, and makes every role
/// service start after the last script. `user` is the scripts' user (`spark.user`).
pub fn add_to(
    mut services: BTreeMap<String, ServiceSpec>,
    scripts: &[PathBuf],
    user: Option<&str>,
) -> Result<BTreeMap<String, ServiceSpec>, Diagnostic> {
    let mut previous: Option<String> = None;
    let mut init = Vec::new();
    for (i, script) in scripts.iter().enumerate() {
        let name = service_name(i, script);
        let spec = serde_json::json!({
            "command": [script.to_string_lossy()],
            "user": user,
            "after": previous.iter().collect::<Vec<_>>(),
            // A service without a probe counts as ready once exec'd; one whose probe never passes
            // counts only when it has exited 0, which is when the next step may start. /bin/false
            // runs once (the first attempt) and then hourly at most while the script runs.
            "ready": { "exec": ["/bin/false"], "interval": "1h", "timeout": "1s", "threshold": 1 },
            "restart": "never",
            "critical": true,
            "stop": { "signal": "TERM", "grace": "3s" },
        });
        let spec: ServiceSpec = serde_json::from_value(spec).map_err(|e| {
            Diagnostic::new(script.display().to_string(), format!("init script: {e}"))
        })?;
        if services.contains_key(&name) {
            return Err(Diagnostic::new(
                script.display().to_string(),
                format!("init script service {name} clashes with a role service of that name"),
            ));
        }
        init.push((name.clone(), spec));
        previous = Some(name);
    }
    if let Some(last) = previous {
        for spec in services.values_mut() {
            spec.after.push(last.clone());
        }
        log::info!(
            "init scripts run first, in order: {}",
            init.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    services.extend(init);
    Ok(services)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn dir_with(files: &[(&str, u32)]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sv-init-{}-{}", std::process::id(), files.len()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, mode) in files {
            let p = dir.join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    #[test]
    fn finds_executables_in_name_order() {
        let dir = dir_with(&[
            ("20-b.sh", 0o755),
            ("10-a.sh", 0o700),
            ("README", 0o644),
            (".hidden.sh", 0o755),
            ("9-c", 0o755),
        ]);
        let names: Vec<String> = find(&dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["10-a.sh", "20-b.sh", "9-c"]);
        assert!(find(&dir.join("missing")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn chains_scripts_before_every_service() {
        let role: BTreeMap<String, ServiceSpec> = [(
            "spark-master".to_string(),
            serde_json::from_value(serde_json::json!({"command": ["/bin/true"]})).unwrap(),
        )]
        .into();
        let scripts = [
            PathBuf::from("/i/10-Setup Data.sh"),
            PathBuf::from("/i/20-b"),
        ];
        let all = add_to(role, &scripts, Some("spark")).unwrap();
        let first = &all["init-01-10-setup-data.sh"];
        let second = &all["init-02-20-b"];
        assert_eq!(first.command, ["/i/10-Setup Data.sh"]);
        assert!(first.after.is_empty());
        assert_eq!(second.after, ["init-01-10-setup-data.sh"]);
        assert_eq!(second.restart, crate::config::role::RestartPolicy::Never);
        assert!(second.critical);
        assert!(
            second.ready.is_some(),
            "ready only by exiting 0, never by being exec'd"
        );
        assert_eq!(second.user.as_deref(), Some("spark"));
        assert_eq!(all["spark-master"].after, ["init-02-20-b"]);
        let none = add_to(BTreeMap::new(), &[], None).unwrap();
        assert!(none.is_empty());
    }
}
