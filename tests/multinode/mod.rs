//! A Swarm of three Docker hosts on one machine (`tests/multinode/cluster.sh`) and the stacks
//! deployed on it, for the multi-host tests (docs/cluster.md).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::docker_support::*;
use serde_json::Value;

/// The nodes: `NAME-n1` (the manager), `NAME-n2`, `NAME-n3`.
pub const NODES: usize = 3;

/// Three Docker hosts in a swarm (`tests/multinode/cluster.sh`). A guard process removes all of it
/// when this value drops, and also when the test process dies without dropping it (its stdin, our
/// pipe, closes).
pub struct Cluster {
    pub name: String,
    guard: Option<Child>,
}

impl Cluster {
    /// Starts the cluster with `images` loaded and the swarm's dispatcher heartbeat `heartbeat`.
    pub fn up(images: &[&str], heartbeat: &str) -> Cluster {
        let name = unique("mh");
        let script = repo().join("tests/multinode/cluster.sh");
        let guard = Command::new(&script)
            .args(["guard", &name])
            .stdin(Stdio::piped())
            .spawn()
            .expect("cluster.sh guard");
        let cluster = Cluster {
            name,
            guard: Some(guard),
        };
        let status = Command::new(&script)
            .arg("up")
            .arg(&cluster.name)
            .args(images)
            .env("MULTINODE_OWNER", std::process::id().to_string())
            .env("MULTINODE_HEARTBEAT", heartbeat)
            .status()
            .expect("cluster.sh up");
        assert!(status.success(), "cluster.sh up failed: {status}");
        cluster
    }

    pub fn node(&self, i: usize) -> String {
        format!("{}-n{i}", self.name)
    }

    /// `docker ARGS` on node `i` (its own CLI and engine): (exit code, stdout, stderr).
    pub fn docker_on(&self, i: usize, args: &[&str]) -> (i32, String, String) {
        exec(&self.node(i), &[&["docker"], args].concat())
    }

    /// `docker ARGS` on node `i`; panics on failure.
    pub fn must(&self, i: usize, args: &[&str]) -> String {
        let (code, out, err) = self.docker_on(i, args);
        assert_eq!(code, 0, "docker {args:?} on node {i}: {err}");
        out.trim().to_string()
    }

    pub fn script(&self, args: &[&str]) {
        let status = Command::new(repo().join("tests/multinode/cluster.sh"))
            .args(args)
            .status()
            .expect("cluster.sh");
        assert!(status.success(), "cluster.sh {args:?}: {status}");
    }

    /// Loses node `i`'s host: SIGKILL to its dockerd and every container on it.
    pub fn kill(&self, i: usize) {
        self.script(&["kill", &self.name, &i.to_string()]);
    }

    /// Brings node `i` back with its storage and swarm state.
    pub fn start(&self, i: usize) {
        self.script(&["start", &self.name, &i.to_string()]);
    }

    /// The node numbers the manager lists as `status`.
    pub fn nodes_in_state(&self, status: &str) -> BTreeSet<usize> {
        self.must(1, &["node", "ls", "--format", "{{.Hostname}} {{.Status}}"])
            .lines()
            .filter(|l| l.ends_with(&format!(" {status}")))
            .filter_map(|l| self.node_number(l.split_whitespace().next()?))
            .collect()
    }

    pub fn node_number(&self, hostname: &str) -> Option<usize> {
        (1..=NODES).find(|i| self.node(*i) == hostname)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
    }
}

/// A running task of a stack's service: the node it runs on and its container's name there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Task {
    pub node: usize,
    pub container: String,
}

/// A stack deployed on the cluster's manager.
pub struct Stack<'a> {
    pub cluster: &'a Cluster,
    pub name: String,
}

impl<'a> Stack<'a> {
    /// `docker stack deploy` on the manager with its 20.10 CLI, the files copied in unchanged.
    pub fn deploy(
        cluster: &'a Cluster,
        name: &str,
        files: &[&str],
        image: &str,
        zk_image: &str,
    ) -> Self {
        let node = cluster.node(1);
        let mut args: Vec<String> = vec![
            "-e".into(),
            format!("SPARKVISOR_IMAGE={image}"),
            "-e".into(),
            format!("SPARKVISOR_ZK_IMAGE={zk_image}"),
            node.clone(),
            "docker".into(),
            "stack".into(),
            "deploy".into(),
            "--resolve-image".into(),
            "never".into(),
        ];
        docker(&["exec", &node, "mkdir", "-p", &format!("/stacks/{name}")]);
        for file in files {
            let inside = format!("/stacks/{name}/{}", file.rsplit('/').next().unwrap());
            docker(&[
                "cp",
                repo().join(file).to_str().unwrap(),
                &format!("{node}:{inside}"),
            ]);
            args.extend(["-c".into(), inside]);
        }
        args.push(name.into());
        let out = run(Command::new("docker").arg("exec").args(&args));
        assert!(
            out.status.success(),
            "docker stack deploy {files:?} with the 20.10 CLI: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Stack {
            cluster,
            name: name.into(),
        }
    }

    pub fn service(&self, name: &str) -> String {
        format!("{}_{name}", self.name)
    }

    /// The service's tasks that Swarm wants running and that run (as the manager last heard).
    pub fn tasks(&self, service: &str) -> Vec<Task> {
        let (_, out, _) = self.cluster.docker_on(
            1,
            &[
                "service",
                "ps",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}|{{.Name}}.{{.ID}}|{{.CurrentState}}",
                &self.service(service),
            ],
        );
        let mut tasks: Vec<Task> = out
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('|');
                let node = self.cluster.node_number(parts.next()?)?;
                let container = parts.next()?.to_string();
                parts
                    .next()?
                    .starts_with("Running")
                    .then_some(Task { node, container })
            })
            .collect();
        tasks.sort();
        tasks
    }

    /// Waits for the single running task of a service.
    pub fn one(&self, service: &str) -> Task {
        wait_for(
            &format!("one running task of {service}"),
            Duration::from_secs(600),
            || match self.tasks(service).as_slice() {
                [task] => Ok(task.clone()),
                other => Err(format!("{other:?}")),
            },
        )
    }

    /// `docker exec` into a task on its node: (exit code, stdout, stderr).
    pub fn exec(&self, task: &Task, args: &[&str]) -> (i32, String, String) {
        self.cluster
            .docker_on(task.node, &[&["exec", &task.container], args].concat())
    }

    /// A task's address on the stack's overlay network.
    pub fn address(&self, task: &Task) -> Result<String, String> {
        let (code, out, err) = self.cluster.docker_on(
            task.node,
            &[
                "inspect",
                "--format",
                &format!(
                    "{{{{with index .NetworkSettings.Networks \"{}_default\"}}}}{{{{.IPAddress}}}}{{{{end}}}}",
                    self.name
                ),
                &task.container,
            ],
        );
        match (code, out.trim()) {
            (0, ip) if !ip.is_empty() => Ok(ip.to_string()),
            _ => Err(format!("no overlay address for {task:?}: {err}")),
        }
    }

    /// The `/json/` of the master in `task`, read inside it.
    pub fn master_json(&self, task: &Task) -> Result<Value, String> {
        let (code, out, err) = self.exec(task, &["curl", "-sf", "http://127.0.0.1:8080/json/"]);
        if code != 0 {
            return Err(format!("master /json/ in {task:?}: {code} {err}"));
        }
        serde_json::from_str(&out).map_err(|e| format!("master /json/: {e}: {out}"))
    }

    /// The address each running worker task advertises (its agent's `spark.local_hostname`).
    pub fn advertised(&self, task: &Task) -> Result<String, String> {
        let (code, out, err) = self.exec(task, &["sparkvisor", "inspect", "--json"]);
        if code != 0 {
            return Err(format!("inspect in {task:?}: {err}"));
        }
        let report: Value = serde_json::from_str(&out).map_err(|e| format!("inspect: {e}"))?;
        Ok(
            report["config"]["settings"]["spark.local_hostname"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// Waits until the master in `master` lists exactly the running tasks of `services` as ALIVE,
    /// each under the address it advertises, each once. Returns the workers' tasks.
    pub fn wait_workers(&self, master: &Task, services: &[&str], count: usize) -> Vec<Task> {
        wait_for(
            &format!("exactly the {count} worker tasks ALIVE in the master"),
            Duration::from_secs(600),
            || {
                let tasks: Vec<Task> = services.iter().flat_map(|s| self.tasks(s)).collect();
                if tasks.len() != count {
                    return Err(format!("running worker tasks: {tasks:?}"));
                }
                let mut want = tasks
                    .iter()
                    .map(|t| self.advertised(t))
                    .collect::<Result<Vec<_>, _>>()?;
                want.sort();
                let json = self.master_json(master)?;
                let mut alive: Vec<String> = alive_workers(&json)
                    .iter()
                    .map(|w| w["host"].as_str().unwrap_or_default().to_string())
                    .collect();
                alive.sort();
                if alive != want {
                    return Err(format!("ALIVE {alive:?}, tasks advertise {want:?}"));
                }
                Ok(tasks.clone())
            },
        )
    }
}
