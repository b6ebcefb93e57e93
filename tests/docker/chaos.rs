#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The short chaos run (docs/ha.md, "Chaos run"): bench/chaos/chaos.py on the HA cluster with a
//! fixed seed that injects each kind of fault once while a job with a known checksum runs — `kill
//! -9` of a worker JVM, `docker stop`/`start` of a worker container, `docker kill` of the active
//! master. The checksum is exact, every fault was injected while the job ran and recovered from,
//! the agent restarted the killed JVM, and no container holds a zombie. Needs root and Docker
//! (CI=true: mandatory); about five minutes.

use crate::docker_support;

use std::process::{Command, Stdio};

use docker_support::*;

/// Seed 14 draws, in order: kill -9 in spark-worker-1, docker stop/start of spark-worker-2,
/// docker kill of the active master.
const SEED: &str = "14";
const FAULTS: usize = 3;

#[test]
fn a_job_survives_seeded_faults_with_its_exact_checksum() {
    if !prerequisites("a_job_survives_seeded_faults_with_its_exact_checksum") {
        return;
    }
    let image = image();
    let zk = zookeeper_image(&image);
    let project = unique("chaos");
    let faults = FAULTS.to_string();
    let out = run(Command::new("python3")
        .arg(repo().join("bench/chaos/chaos.py"))
        .args(["--image", &image, "--zk-image", &zk, "--seed", SEED])
        .args([
            "--faults",
            &faults,
            "--partitions",
            "90",
            "--task-seconds",
            "3",
        ])
        .args(["--project", &project])
        .current_dir(repo())
        .stderr(Stdio::inherit()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // What was injected and the recovery times, for the test log.
    eprintln!("{stdout}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{stdout}"))
            .to_string()
    };
    let checksum = line("chaos: checksum ");
    let words: Vec<&str> = checksum.split_whitespace().collect();
    assert_eq!(
        words.get(2).map(|w| w.trim_end_matches(',')),
        words.get(4).copied(),
        "{checksum}"
    );
    assert_ne!(words.get(2), Some(&"None,"), "the job printed no checksum");
    assert!(
        stdout.contains(&format!("{FAULTS} of {FAULTS} faults injected")),
        "not every fault was injected while the job ran:\n{stdout}"
    );
    for kind in [
        "kill -9 worker JVM",
        "docker stop/start worker",
        "docker kill active master",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(kind) && l.contains("recovered in")),
            "{kind}: not injected or not recovered:\n{stdout}"
        );
    }
    let restarts = line("chaos: fault 1: kill -9");
    assert!(restarts.contains("agent restarts"), "{restarts}");
    assert!(
        !stdout.contains("the agent did not restart"),
        "the agent did not restart a killed JVM:\n{stdout}"
    );
    // `chaos: zombies per container {'spark-worker-1': 0, ...}`: five containers, each 0.
    let zombies = line("chaos: zombies per container");
    let counts: Vec<&str> = zombies
        .split(',')
        .filter_map(|entry| entry.rsplit(':').next())
        .map(|n| n.trim().trim_end_matches('}'))
        .collect();
    assert!(
        counts.len() == 5 && counts.iter().all(|n| *n == "0"),
        "zombies left: {zombies}"
    );
    assert!(
        out.status.success() && stdout.contains("chaos: PASS"),
        "{stdout}"
    );
}
