#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A bitnami/spark setup switched by changing the image name, driven as its users drive it:
//! - a derived Dockerfile in bitnami's documented style, with only its FROM line changed:
//!   `USER root`, `install_packages` (a Debian package), a jar COPY'd into
//!   /opt/bitnami/spark/jars and a conf file into conf, then `USER 1001`, which adds a jar,
//!   writes a conf file and `pip install`s a wheel;
//! - bitnami's compose cluster (master `spark`, a worker with bitnami's variables) on that image,
//!   the worker started the bitnami way (`entrypoint.sh` + `run.sh`), both sharing a named volume
//!   over the whole Spark home, which Docker seeds from the image;
//! - at run time, as uid 1001 with `docker exec`: a jar added to the shared jars dir (the other
//!   container sees it), a wheel `pip install`ed, and a job submitted to the cluster with
//!   `--packages` from a file-based Maven repository (no network here). The executors (in the
//!   worker) see every jar on their class path, import the build-time module and fetch the
//!   package's jar.
//!
//! Needs root and Docker (CI=true: mandatory).

use crate::{docker_support, imagecompat_support};

use std::time::Duration;

use docker_support::{container_ip, exec, http_json, image, prerequisites, wait_for, Project};
use imagecompat_support::{assert_job_saw_everything, fixture_dir, job_args, BuiltImage, Files};

/// The fixture Dockerfile with its FROM line (bitnami's image) replaced by `image`.
fn derived_dockerfile(image: &str) -> String {
    let text = std::fs::read_to_string(fixture_dir().join("bitnami-derived.Dockerfile")).unwrap();
    let mut replaced = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("FROM ") {
                replaced += 1;
                format!("FROM {image}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(replaced, 1, "one FROM line in the fixture");
    out.join("\n") + "\n"
}

#[test]
fn bitnami_derived_image_and_compose_run_with_only_the_image_name_changed() {
    if !prerequisites("bitnami_derived_image_and_compose") {
        return;
    }
    let base = image();
    let files = Files::build(&base);
    let derived = BuiltImage::build("bitnamiderived", &derived_dockerfile(&base), &files.0);

    // The derived image, as built: install_packages worked as root, and everything USER 1001
    // added is there.
    let (code, out, err) = docker_support::run_capture(&[
        "run",
        "--rm",
        &derived.0,
        "sh",
        "-c",
        "id -u; tree --version; cd /opt/bitnami/spark/conf; \
         cat imagecompat.properties imagecompat-1001.properties; \
         ls /opt/bitnami/spark/jars/build-time.jar /opt/bitnami/spark/jars/build-time-1001.jar",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("1001\n"), "{out}");
    assert!(out.contains("tree v"), "{out}");
    assert!(
        out.contains("imagecompat.copied=yes\nimagecompat.written.by=1001"),
        "{out}"
    );

    let files_dir = files.0.display().to_string();
    let cluster = Project::up_file(
        "bitnamicompose",
        &derived.0,
        "tests/fixtures/imagecompat/bitnami-compose.yaml",
        &[("IMAGECOMPAT_FILES", files_dir.as_str())],
    );
    let master = cluster.container("spark");
    let worker = cluster.container("spark-worker");
    let master_ip = container_ip(&master);
    wait_for(
        "the worker ALIVE at the master",
        Duration::from_secs(300),
        || {
            let json = http_json(&master_ip, 8080, "/json/")?;
            match json["aliveworkers"].as_u64() {
                Some(n) if n >= 1 => Ok(()),
                _ => Err(json.to_string()),
            }
        },
    );

    // The worker came up through bitnami's entrypoint.sh and run.sh: sparkvisor is its PID 1.
    let (_, pid1, _) = exec(&worker, &["cat", "/proc/1/cmdline"]);
    assert!(
        pid1.starts_with("/usr/local/bin/sparkvisor\0run"),
        "{pid1:?}"
    );
    // Each node rendered its own config (the Spark home is shared), and the conf file the
    // derived image added went with it.
    for (container, role) in [(&master, "master"), (&worker, "worker")] {
        let (code, env_sh, err) = exec(container, &["cat", "/tmp/spark/conf/spark-env.sh"]);
        assert_eq!(code, 0, "{err}");
        assert!(env_sh.contains(&format!("for role '{role}'")), "{env_sh}");
        let (code, _, err) = exec(
            container,
            &["test", "-f", "/tmp/spark/conf/imagecompat.properties"],
        );
        assert_eq!(code, 0, "{role}: the copied conf file: {err}");
    }

    // Run time, as uid 1001 (the derived image's USER): a jar added in one container is in the
    // other's Spark home too; a wheel installs into the image's Python.
    let (code, id, _) = exec(&master, &["id", "-u"]);
    assert_eq!((code, id.trim()), (0, "1001"));
    let (code, _, err) = exec(
        &master,
        &[
            "cp",
            "/imagecompat/run-time.jar",
            "/opt/bitnami/spark/jars/",
        ],
    );
    assert_eq!(code, 0, "a jar added at run time as 1001: {err}");
    let (code, _, err) = exec(&worker, &["test", "-f", "/opt/spark/jars/run-time.jar"]);
    assert_eq!(code, 0, "the shared Spark home in the worker: {err}");
    let (code, out, err) = exec(
        &master,
        &[
            "pip",
            "install",
            "--no-index",
            "/imagecompat/imagecompat_run-0.1-py3-none-any.whl",
        ],
    );
    assert_eq!(code, 0, "pip install as 1001: {out}{err}");
    let (code, out, err) = exec(
        &master,
        &[
            "python",
            "-c",
            "import imagecompat_run; print(imagecompat_run.VALUE)",
        ],
    );
    assert_eq!((code, out.trim()), (0, "installed at run time"), "{err}");

    // A job submitted the way bitnami users do (docker exec spark-submit), with --packages.
    let mut args = job_args(
        "spark://spark:7077",
        &[
            "/imagecompat/job.py",
            "imagecompat/build-time.txt",
            "imagecompat/build-time-1001.txt",
            "imagecompat/run-time.txt",
            "imagecompat.properties",
            "imagecompat-1001.properties",
            "--",
            "imagecompat_build",
        ],
    );
    let mut cmd = vec!["exec", master.as_str()];
    cmd.append(&mut args);
    let (code, out, err) = docker_support::run_capture(&cmd);
    assert_eq!(code, 0, "spark-submit: {out}{err}");
    assert_job_saw_everything(
        &out,
        &[
            "imagecompat/build-time.txt",
            "imagecompat/build-time-1001.txt",
            "imagecompat/run-time.txt",
            "imagecompat.properties",
            "imagecompat-1001.properties",
        ],
        &["imagecompat_build"],
    );
    // The tasks ran in the worker container (its host name).
    let (_, worker_host, _) = exec(&worker, &["hostname"]);
    assert!(
        out.contains(&format!("MODULES {} ", worker_host.trim())),
        "{out}"
    );
}
