#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Writable where bitnami's image was, and the upstream images' entry point scripts:
//! - as the default user (185) and as an arbitrary uid in group 0 (OpenShift), a container adds a
//!   jar to the Spark home and a conf file to its conf dir, `pip install`s a wheel into the image's
//!   Python and runs a job with `--packages` from a file-based Maven repository (no network here):
//!   the job sees the jar, the conf file, the module and the package; the arbitrary uid's
//!   `spark.jars.ivy` is where Ivy put the package;
//! - `/opt/bitnami/scripts/spark/entrypoint.sh` and `/opt/entrypoint.sh` as the ENTRYPOINT hand
//!   PID 1 to sparkvisor and run the command with its exit code; `run.sh` with arguments, a
//!   bitnami shell library other than liblog.sh and `install_packages` as non-root are refused
//!   with a message saying why; `run.sh` as the command under the image's own ENTRYPOINT runs
//!   the role supervised, and `docker stop` ends it in order.
//!
//! (uid 1001, the derived image, compose and a shared Spark home volume: tests/docker/dropin_bitnami.rs.)
//! Needs root and Docker (CI=true: mandatory).

use crate::{docker_support, imagecompat_support};

use std::time::Duration;

use docker_support::{
    agent_status, docker, image, prerequisites, run_capture, service, wait_for, Container,
};
use imagecompat_support::{assert_job_saw_everything, Files};

#[test]
fn default_and_arbitrary_uid_add_jars_conf_python_packages_at_run_time() {
    if !prerequisites("default_and_arbitrary_uid_add_jars_conf_python_packages") {
        return;
    }
    let image = image();
    let files = Files::build(&image);
    let volume = files.volume();
    // (docker run --user, spark.jars.ivy or none, uid expected)
    let users: [(Option<&str>, Option<&str>, &str); 2] = [
        (None, None, "185"),
        (
            Some("1000700000:0"),
            Some("/opt/bitnami/spark/.ivy-imagecompat"),
            "1000700000",
        ),
    ];
    for (user, ivy, uid) in users {
        let ivy_conf = ivy
            .map(|d| format!("--conf spark.jars.ivy={d}"))
            .unwrap_or_default();
        let script = format!(
            "set -e; id -u; \
             cp /imagecompat/run-time.jar /opt/spark/jars/; \
             echo imagecompat.runtime=yes > /opt/bitnami/spark/conf/imagecompat-runtime.properties; \
             pip install -q --no-index /imagecompat/imagecompat_run-0.1-py3-none-any.whl; \
             spark-submit --master 'local[2]' --packages org.imagecompat:probe-pkg:1.0 \
               --repositories file:///imagecompat/repo {ivy_conf} /imagecompat/job.py \
               imagecompat/run-time.txt imagecompat-runtime.properties -- imagecompat_run; \
             {}",
            ivy.map(|d| format!("ls {d}/jars"))
                .unwrap_or_else(|| "true".into())
        );
        let mut args = vec!["run", "--rm", "-v", &volume];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        args.extend([image.as_str(), "sh", "-c", &script]);
        let (code, out, err) = run_capture(&args);
        assert_eq!(code, 0, "as {uid}: {out}{err}");
        assert!(out.starts_with(&format!("{uid}\n")), "{out}");
        assert_job_saw_everything(
            &out,
            &["imagecompat/run-time.txt", "imagecompat-runtime.properties"],
            &["imagecompat_run"],
        );
        if ivy.is_some() {
            assert!(
                out.contains("org.imagecompat_probe-pkg-1.0.jar\n"),
                "spark.jars.ivy: {out}"
            );
        }
    }
}

#[test]
fn upstream_entry_point_scripts_run_commands_under_sparkvisor_and_refuse_what_they_cannot_honour() {
    if !prerequisites("upstream_entry_point_scripts") {
        return;
    }
    let image = image();
    for entrypoint in [
        "/opt/bitnami/scripts/spark/entrypoint.sh",
        "/opt/entrypoint.sh",
    ] {
        let (code, out, err) = run_capture(&[
            "run",
            "--rm",
            "--entrypoint",
            entrypoint,
            &image,
            "sh",
            "-c",
            "tr '\\0' ' ' < /proc/1/cmdline; echo; exit 7",
        ]);
        assert_eq!(code, 7, "{entrypoint}: {out}{err}");
        assert!(
            out.starts_with("/usr/local/bin/sparkvisor -- sh -c "),
            "{entrypoint}: PID 1 is {out}"
        );
    }
    // Under the image's own ENTRYPOINT (sparkvisor is PID 1 already) the scripts only exec.
    let (code, out, err) = run_capture(&[
        "run",
        "--rm",
        &image,
        "/opt/bitnami/scripts/spark/entrypoint.sh",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo PPID=$PPID",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PPID=1\n"), "{out}");

    let refusals: [(&[&str], i32, &str); 3] = [
        (
            &["/opt/bitnami/scripts/spark/run.sh", "--cores", "2"],
            78,
            "run.sh: takes no arguments (the role comes from SPARK_MODE); got: --cores 2",
        ),
        (
            &["sh", "-c", ". /opt/bitnami/scripts/libspark.sh; echo AFTER"],
            78,
            "no bitnami shell libraries except /opt/bitnami/scripts/liblog.sh",
        ),
        (
            &["install_packages", "tree"],
            77,
            "install_packages: must run as root (add USER root before it in your Dockerfile)",
        ),
    ];
    for (cmd, want, message) in refusals {
        let mut args = vec!["run", "--rm", image.as_str()];
        args.extend_from_slice(cmd);
        let (code, out, err) = run_capture(&args);
        assert_eq!(code, want, "{cmd:?}: {out}{err}");
        assert!(err.contains(message), "{cmd:?}: {err}");
        assert!(!out.contains("AFTER"), "{out}");
    }
    let (code, _, err) = run_capture(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        ". /opt/bitnami/scripts/liblog.sh; info hello; (BITNAMI_DEBUG=true; debug shown); debug hidden",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(" INFO ==> hello\n"), "{err}");
    assert!(err.contains(" DEBUG ==> shown\n"), "{err}");
    assert!(!err.contains("hidden"), "{err}");
}

#[test]
fn bitnami_run_sh_as_the_command_under_the_images_entrypoint_supervises_the_role() {
    if !prerequisites("bitnami_run_sh_as_the_command") {
        return;
    }
    let image = image();
    // A derived image that copied bitnami's CMD but inherits this image's ENTRYPOINT: PID 1 is
    // sparkvisor in pass-through mode, run.sh execs the agent in role mode under it.
    let master = Container::run(
        "runshmaster",
        &["-e", "SPARK_MODE=master"],
        &image,
        &["/opt/bitnami/scripts/spark/run.sh"],
    );
    wait_for(
        "the master ready under run.sh",
        Duration::from_secs(240),
        || {
            let status = agent_status(&master.name)?;
            match service(&status, "spark-master") {
                Some(s) if s["state"] == "ready" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    // docker stop reaches the agent through PID 1 and it stops the master in order.
    docker(&["stop", "-t", "30", &master.name]);
    assert_eq!(
        master.inspect("{{.State.ExitCode}}"),
        "0",
        "{}",
        master.logs()
    );
}
