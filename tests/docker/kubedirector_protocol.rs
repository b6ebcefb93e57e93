#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! KubeDirector's protocol, replayed with `docker exec` exactly as bluek8s/kubedirector drives an app
//! container (pkg/controller/kubedirectorcluster/members.go, types.go; pkg/executor/guest.go):
//! configmeta.json written with `mkdir -p` + `tee` (content on stdin), the config package fetched
//! with `curl -L <packageURL> -o appconfig.tgz` and extracted into /opt/guestconfig, the configure
//! command run through `bash` on stdin with its status appended to /opt/guestconfig/configure.status,
//! then, when members are added or removed, configmeta.json rewritten on every ready member and
//! `startscript --addnodes|--delnodes --nodegroup 1 --role ROLE --fqdns ...` sent to them.
//! Never `docker cp`. The packageURL is the app's own (kubedirector/spark-app.yaml).
//!
//! Needs root and Docker (fails under CI=true when missing).

use crate::docker_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use docker_support::*;
use serde_json::{json, Value};

/// KubeDirector's commands (types.go), with its placeholders.
const APP_PREP_INIT_CMD: &str = "cd /opt/guestconfig/ &&
\trm -rf /opt/guestconfig/* &&
\tcurl -L {{APP_CONFIG_URL}} -o appconfig.tgz &&
\ttar xzf appconfig.tgz &&
\tchmod +x /opt/guestconfig/*/startscript &&
\trm -rf /opt/guestconfig/appconfig.tgz";
const APP_PREP_CONFIG_RUN_CMD: &str = "rm -f /opt/guestconfig/configure.* &&
\techo -n %s= > /opt/guestconfig/configure.status &&
\tnohup sh -c \"/opt/guestconfig/*/startscript --configure;
\techo -n $? >> /opt/guestconfig/configure.status\" > /opt/guestconfig/configure.stdout  
\t2> /opt/guestconfig/configure.stderr  &";
/// Newer KubeDirector (types.go with `GetAppConfigCmd`, live app upgrades): every status-file event —
/// `configure`, `reconnect` and the live-upgrade ones — through one template, single-quoted, so the
/// exec returns at once and the status is the startscript's own exit code.
const APP_PREP_CONFIG_TEMPLATE_CMD: &str = "echo -n %s= > /opt/guestconfig/configure.status &&
\tnohup sh -c '/opt/guestconfig/*/startscript --%e 2>/opt/guestconfig/configure.stderr 1>/opt/guestconfig/configure.stdout;
\techo -n $? >> /opt/guestconfig/configure.status' &";
const STARTSCRIPT: &str = "/opt/guestconfig/*/startscript";
const DOMAIN: &str = "kdhs-sv7qp.spark.svc.cluster.local";

/// One KubeDirector member: a pod of a role, as a container with the pod's name and FQDN.
struct Member {
    role_id: &'static str,
    pod: String,
    container: Container,
}

impl Member {
    fn fqdn(&self) -> String {
        format!("{}.{DOMAIN}", self.pod)
    }
    fn name(&self) -> &str {
        &self.container.name
    }
}

fn start_member(
    net: &str,
    image: &str,
    role_id: &'static str,
    pod: &str,
    limits: [&str; 2],
) -> Member {
    let fqdn = format!("{pod}.{DOMAIN}");
    let container = Container::run(
        "kd",
        &[
            "--network",
            net,
            "--hostname",
            pod,
            "--domainname",
            DOMAIN,
            "--network-alias",
            &fqdn,
            "--cpus",
            limits[0],
            "--memory",
            limits[1],
            // The example KubeDirectorCluster's env for every role.
            "-e",
            "SPARKVISOR_CONFIGMETA_WAIT=10m",
        ],
        image,
        &[],
    );
    Member {
        role_id,
        pod: pod.to_string(),
        container,
    }
}

/// `docker exec [-i] CONTAINER ARGS` with `stdin` fed in: (code, stdout, stderr).
fn exec_in(container: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new("docker");
    cmd.arg("exec");
    if stdin.is_some() {
        cmd.arg("-i");
    }
    cmd.arg(container)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("docker exec");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("docker exec output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// executor.RunScript: the script on the stdin of `bash`.
fn run_script(container: &str, script: &str) -> (i32, String, String) {
    exec_in(container, &["bash"], Some(script))
}

/// executor.CreateFile: `mkdir -p DIR` (+ `chmod 700`), then `tee FILE` with the content on stdin.
fn create_file(container: &str, path: &str, content: &str) {
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
    for args in [vec!["mkdir", "-p", dir], vec!["chmod", "700", dir]] {
        let (code, _, err) = exec_in(container, &args, None);
        assert_eq!(code, 0, "{args:?} in {container}: {err}");
    }
    let (code, _, err) = exec_in(container, &["tee", path], Some(content));
    assert_eq!(code, 0, "tee {path} in {container}: {err}");
}

/// The configmeta.json KubeDirector generates for `member` of a cluster of `members` (schema 7, the
/// shape of kubedirector/examples/configmeta-*.json).
fn configmeta(members: &[&Member], member: &Member) -> String {
    let example =
        std::fs::read_to_string(repo().join("kubedirector/examples/configmeta-worker.json"))
            .expect("example configmeta");
    let mut meta: Value = serde_json::from_str(&example).expect("example configmeta JSON");
    let mut by_role: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        by_role
            .entry(m.role_id)
            .or_default()
            .push((m.fqdn(), (i + 1).to_string()));
    }
    let roles = meta["nodegroups"]["1"]["roles"]
        .as_object_mut()
        .expect("roles");
    for (role_id, role) in roles.iter_mut() {
        let list = by_role.get(role_id.as_str()).cloned().unwrap_or_default();
        role["fqdns"] = json!(list.iter().map(|(f, _)| f).collect::<Vec<_>>());
        role["hostnames"] = role["fqdns"].clone();
        role["node_ids"] = json!(list.iter().map(|(_, id)| id).collect::<Vec<_>>());
        role["fqdn_mappings"] = json!(list.iter().cloned().collect::<BTreeMap<_, _>>());
        role["flavor"]["cores"] = json!("1");
        role["flavor"]["memory"] = json!("1024");
    }
    let id = members
        .iter()
        .position(|m| m.pod == member.pod)
        .map_or(0, |i| i + 1);
    meta["node"] = json!({
        "role_id": member.role_id,
        "nodegroup_id": "1",
        "id": id.to_string(),
        "hostname": member.fqdn(),
        "fqdn": member.fqdn(),
        "domain": DOMAIN,
        "distro_id": "sparkvisor/spark",
        "depends_on": {},
    });
    serde_json::to_string_pretty(&meta).expect("configmeta text")
}

fn container_id(member: &Member) -> String {
    format!("docker://{}", member.container.inspect("{{.Id}}"))
}

fn package_url() -> String {
    let app = std::fs::read_to_string(repo().join("kubedirector/spark-app.yaml")).expect("app");
    let app: Value = serde_yaml::from_str(&app).expect("app YAML");
    app["spec"]["defaultConfigPackage"]["packageURL"]
        .as_str()
        .expect("the app has a config package")
        .to_string()
}

/// appConfig: configmeta, then (when the startscript is not there yet) the package, then the
/// configure command; returns what configure.status holds afterwards.
fn app_config(members: &[&Member], member: &Member, url: &str) -> String {
    create_file(
        member.name(),
        "/etc/guestconfig/configmeta.json",
        &configmeta(members, member),
    );
    // configcli: KubeDirector installs its own (into /usr/bin, as the container user) unless one of
    // its canary files exists; uid 185 could not, and the member would end in "config error".
    let (canary, _, _) = run_script(
        member.name(),
        "test -f /usr/local/bin/configcli || test -f /usr/bin/configcli",
    );
    assert_eq!(
        canary, 0,
        "{}: KubeDirector would install configcli into /usr/bin as the image user",
        member.pod
    );
    let (exists, _, _) = exec_in(member.name(), &["test", "-f", STARTSCRIPT], None);
    if exists != 0 {
        let (code, _, err) = run_script(
            member.name(),
            &APP_PREP_INIT_CMD.replace("{{APP_CONFIG_URL}}", url),
        );
        assert_eq!(code, 0, "app config setup in {}: {err}", member.pod);
    }
    let cid = container_id(member);
    let (code, _, err) = run_script(member.name(), &APP_PREP_CONFIG_RUN_CMD.replace("%s", &cid));
    assert_eq!(code, 0, "configure command in {}: {err}", member.pod);
    wait_status(member, &cid)
}

/// A status-file event as newer KubeDirector sends it; returns what configure.status holds once
/// the startscript finished.
fn status_event(member: &Member, event: &str) -> String {
    let cid = container_id(member);
    let cmd = APP_PREP_CONFIG_TEMPLATE_CMD
        .replace("%s", &cid)
        .replace("%e", event);
    let (code, _, err) = run_script(member.name(), &cmd);
    assert_eq!(code, 0, "--{event} command in {}: {err}", member.pod);
    wait_status(member, &cid)
}

/// KubeDirector polls the status file until it holds `<container id>=<status>`.
fn wait_status(member: &Member, cid: &str) -> String {
    wait_for(
        &format!("configure status of {}", member.pod),
        Duration::from_secs(300),
        || {
            let (_, status, _) = exec_in(
                member.name(),
                &["cat", "/opt/guestconfig/configure.status"],
                None,
            );
            match status.split_once('=') {
                Some((id, code)) if id == cid && !code.is_empty() => Ok(status.clone()),
                _ => Err(format!("configure.status: {status:?}")),
            }
        },
    )
}

/// Runs appConfig on several members at once (KubeDirector configures a role's members in parallel).
fn configure_all(members: &[&Member], new: &[&Member], url: &str) {
    std::thread::scope(|s| {
        let handles: Vec<_> = new
            .iter()
            .map(|m| (m, s.spawn(|| app_config(members, m, url))))
            .collect();
        for (m, h) in handles {
            let status = h.join().expect("configure thread");
            assert_eq!(
                status,
                format!("{}=0", container_id(m)),
                "configure status of {}",
                m.pod
            );
        }
    });
}

/// A notification (syncMemberNotifies): the startscript with KubeDirector's arguments via bash.
fn notify(member: &Member, op: &str, role_id: &str, fqdns: &[String]) -> (i32, String, String) {
    let cmd = [
        STARTSCRIPT,
        &format!("--{op}"),
        "--nodegroup 1",
        "--role",
        role_id,
        "--fqdns",
        &fqdns.join(","),
    ]
    .join(" ");
    run_script(member.name(), &cmd)
}

/// (service name → (pid, restarts)) of a member's agent.
fn service_pids(member: &Member) -> BTreeMap<String, (u64, u64)> {
    let status = agent_status(member.name()).expect("agent status");
    status["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                (
                    s["pid"].as_u64().unwrap_or_default(),
                    s["restarts"].as_u64().unwrap_or_default(),
                ),
            )
        })
        .collect()
}

fn alive_hosts(master_ip: &str) -> Result<Vec<String>, String> {
    let master = http_json(master_ip, 8080, "/json/")?;
    Ok(alive_workers(&master)
        .iter()
        .map(|w| w["host"].as_str().unwrap_or_default().to_string())
        .collect())
}

fn wait_alive(master_ip: &str, expected: &[String]) {
    let mut want = expected.to_vec();
    want.sort();
    wait_for(
        &format!("ALIVE workers {want:?}"),
        Duration::from_secs(240),
        || {
            let mut hosts = alive_hosts(master_ip)?;
            hosts.sort();
            if hosts == want {
                Ok(())
            } else {
                Err(format!("ALIVE: {hosts:?}"))
            }
        },
    );
}

#[test]
fn kubedirector_protocol_configures_adds_and_removes_members() {
    if !prerequisites("kubedirector_protocol_configures_adds_and_removes_members") {
        return;
    }
    let image = image();
    let url = package_url();
    assert!(
        url.starts_with("file:///"),
        "{url}: the package ships in the image"
    );
    let net = Network::new("kdnet");

    // The pods of the example cluster (smaller workers: the machine is shared).
    let master = start_member(&net.0, &image, "spark-master", "kdss-m9x2a-0", ["1", "1g"]);
    let w0 = start_member(&net.0, &image, "spark-worker", "kdss-wq9zt-0", ["1", "1g"]);
    let w1 = start_member(&net.0, &image, "spark-worker", "kdss-wq9zt-1", ["1", "1g"]);
    let nb = start_member(
        &net.0,
        &image,
        "notebook-server",
        "kdss-nb4k7-0",
        ["1", "1536m"],
    );
    let members = [&master, &w0, &w1, &nb];

    // Nothing starts before configmeta.json exists.
    for m in &members {
        let (code, _, _) = exec(m.name(), &["sparkvisor", "status"]);
        assert_ne!(
            code, 0,
            "{}: the agent serves before configmeta.json",
            m.pod
        );
    }

    // Initial configuration, role by role as KubeDirector's reconciler reaches them.
    configure_all(&members, &[&master], &url);
    configure_all(&members, &[&w0, &w1, &nb], &url);
    let master_ip = container_ip(master.name());
    wait_alive(&master_ip, &[w0.fqdn(), w1.fqdn()]);
    for m in &members {
        let (code, out, err) = exec(m.name(), &["sparkvisor", "health"]);
        assert_eq!(code, 0, "{}: {out}{err}", m.pod);
    }
    let before: BTreeMap<String, _> = members
        .iter()
        .map(|m| (m.pod.clone(), service_pids(m)))
        .collect();

    // A notification that configmeta.json does not reflect yet is refused (KubeDirector retries).
    let (code, _, err) = notify(
        &master,
        "addnodes",
        "spark-worker",
        &["kdss-wq9zt-9.nowhere".into()],
    );
    assert_ne!(
        code, 0,
        "an addnodes for an FQDN configmeta does not list succeeded"
    );
    assert!(err.contains("does not list"), "{err}");

    // Scale up: a third worker. Ready members get the new configmeta first, the new member is
    // configured, then every ready member is notified.
    let w2 = start_member(&net.0, &image, "spark-worker", "kdss-wq9zt-2", ["1", "1g"]);
    let grown = [&master, &w0, &w1, &nb, &w2];
    for m in &members {
        create_file(
            m.name(),
            "/etc/guestconfig/configmeta.json",
            &configmeta(&grown, m),
        );
    }
    configure_all(&grown, &[&w2], &url);
    for m in &members {
        let (code, out, err) = notify(m, "addnodes", "spark-worker", &[w2.fqdn()]);
        assert_eq!(code, 0, "addnodes on {}: {out}{err}", m.pod);
    }
    wait_alive(&master_ip, &[w0.fqdn(), w1.fqdn(), w2.fqdn()]);
    for m in &members {
        assert_eq!(
            service_pids(m),
            before[&m.pod],
            "{}: a service restarted for a worker added elsewhere",
            m.pod
        );
        let logs = m.container.logs();
        assert!(
            logs.contains("config reloaded"),
            "{}: the agent did not re-read configmeta.json:\n{logs}",
            m.pod
        );
    }
    let (code, out, _) = exec(nb.name(), &["sparkvisor", "inspect", "--json"]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).expect("inspect JSON");
    assert_eq!(
        report["config"]["peers"]["worker"]["value"],
        json!([w0.fqdn(), w1.fqdn(), w2.fqdn()])
    );

    // Scale down: w1 goes. Ready members get configmeta without it and --delnodes; then the pod
    // is deleted (the kubelet stops the container).
    let shrunk = [&master, &w0, &nb, &w2];
    let remaining = [&master, &w0, &nb, &w2];
    for m in &remaining {
        create_file(
            m.name(),
            "/etc/guestconfig/configmeta.json",
            &configmeta(&shrunk, m),
        );
    }
    for m in &remaining {
        let (code, out, err) = notify(m, "delnodes", "spark-worker", &[w1.fqdn()]);
        assert_eq!(code, 0, "delnodes on {}: {out}{err}", m.pod);
    }
    docker(&["stop", "-t", "20", w1.name()]);
    wait_alive(&master_ip, &[w0.fqdn(), w2.fqdn()]);
    for m in [&master, &w0, &nb] {
        assert_eq!(
            service_pids(m),
            before[&m.pod],
            "{}: a service restarted for a worker removed elsewhere",
            m.pod
        );
    }

    // Newer KubeDirector's live-upgrade events, with its status-file template. A recreated
    // member (`--pod_upgraded`) is configured as by `--configure`; the role and cluster events
    // reload on every member and restart nothing, since nothing it depends on changed.
    let after: BTreeMap<String, _> = remaining
        .iter()
        .map(|m| (m.pod.clone(), service_pids(m)))
        .collect();
    assert_eq!(
        status_event(&w2, "pod_upgraded"),
        format!("{}=0", container_id(&w2))
    );
    for event in ["role_upgraded", "cluster_upgraded", "reconnect"] {
        for m in &remaining {
            assert_eq!(
                status_event(m, event),
                format!("{}=0", container_id(m)),
                "--{event} on {}",
                m.pod
            );
        }
    }
    wait_alive(&master_ip, &[w0.fqdn(), w2.fqdn()]);
    for m in &remaining {
        assert_eq!(
            service_pids(m),
            after[&m.pod],
            "{}: a service restarted for an upgrade event",
            m.pod
        );
    }
    // An event this image does not know fails with the reason on stderr, and configure.status
    // reads non-zero whichever way KubeDirector quotes `$?`.
    let status = status_event(&w0, "pod_frobnicated");
    let code = status
        .rsplit_once('=')
        .map(|(_, c)| c.to_string())
        .unwrap_or_default();
    assert!(!code.is_empty() && code != "0", "{status}");
    let (_, err, _) = exec_in(
        w0.name(),
        &["cat", "/opt/guestconfig/configure.stderr"],
        None,
    );
    assert!(err.contains("--pod_frobnicated"), "{err}");
}
