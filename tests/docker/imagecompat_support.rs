//! Shared by the image-compatibility tests: the files they add to images and containers (jars, a
//! file-based Maven repository, wheels: `tests/fixtures/imagecompat/make_fixtures.py`, run with
//! the image's own Python so the host needs none), the job that reports what the executors see,
//! and the parsing of its report.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::docker_support::{docker, repo, unique};

/// The fixture sources in the repository.
pub fn fixture_dir() -> PathBuf {
    repo().join("tests/fixtures/imagecompat")
}

/// A fresh directory holding the built fixtures and `job.py`, removed when dropped.
pub struct Files(pub PathBuf);

impl Files {
    /// Builds the fixtures with `image`'s Python into a new directory under the temp dir.
    pub fn build(image: &str) -> Files {
        let dir = std::env::temp_dir().join(unique("imagecompatfiles"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let src = format!("{}:/src:ro", fixture_dir().display());
        let out = format!("{}:/out", dir.display());
        docker(&[
            "run",
            "--rm",
            "--user",
            "0",
            "-v",
            &src,
            "-v",
            &out,
            image,
            "python3",
            "/src/make_fixtures.py",
            "/out",
        ]);
        std::fs::copy(fixture_dir().join("job.py"), dir.join("job.py"))
            .unwrap_or_else(|e| panic!("job.py: {e}"));
        Files(dir)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `-v DIR:/imagecompat:ro`.
    pub fn volume(&self) -> String {
        format!("{}:/imagecompat:ro", self.0.display())
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An image built by a test, removed when dropped.
pub struct BuiltImage(pub String);

impl BuiltImage {
    /// Builds `dockerfile` (text) with `context` as the build context.
    pub fn build(what: &str, dockerfile: &str, context: &Path) -> BuiltImage {
        let tag = format!("{}:test", unique(what));
        std::fs::write(context.join("Dockerfile"), dockerfile)
            .unwrap_or_else(|e| panic!("Dockerfile: {e}"));
        let out = crate::docker_support::run(
            std::process::Command::new("docker")
                .env(
                    "DOCKER_BUILDKIT",
                    std::env::var("DOCKER_BUILDKIT").unwrap_or_else(|_| "0".into()),
                )
                .args(["build", "-q", "-t", &tag])
                .arg(context),
        );
        assert!(
            out.status.success(),
            "docker build of {tag} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        BuiltImage(tag)
    }
}

impl Drop for BuiltImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["image", "rm", "-f", &self.0])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The spark-submit arguments that run `job.py` with the local Maven repository's package.
pub fn job_args<'a>(master: &'a str, checks: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "spark-submit",
        "--master",
        master,
        "--packages",
        "org.imagecompat:probe-pkg:1.0",
        "--repositories",
        "file:///imagecompat/repo",
    ];
    args.extend_from_slice(checks);
    args
}

/// The resources `job.py` reported missing, and the lines it printed with `prefix`.
pub fn report<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// Panics unless every `RESOURCE` line says found, every `MODULES` line has each module
/// installed, every `FETCHED` line lists the package's jar, and the job finished.
pub fn assert_job_saw_everything(out: &str, resources: &[&str], modules: &[&str]) {
    assert!(
        out.contains("IMAGECOMPAT_JOB_DONE"),
        "the job did not finish:\n{out}"
    );
    for r in resources {
        let line = format!("RESOURCE {r} found");
        assert!(out.contains(&line), "{line}:\n{out}");
    }
    let module_lines = report(out, "MODULES ");
    assert!(!module_lines.is_empty(), "{out}");
    for line in &module_lines {
        for m in modules {
            assert!(
                line.contains(&format!("{m}=installed")),
                "{m}: {line}\n{out}"
            );
        }
    }
    let fetched = report(out, "FETCHED ");
    assert!(!fetched.is_empty(), "{out}");
    for line in fetched {
        assert!(
            line.contains("org.imagecompat_probe-pkg-1.0.jar"),
            "the --packages jar on the executors: {line}\n{out}"
        );
    }
}
