#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every workload in k8s/ passes the Pod Security Standard "restricted" profile as written (the
//! rules of https://kubernetes.io/docs/concepts/security/pod-security-standards/, baseline
//! included), and the namespace enforces it. No cluster is needed: the rules are checked on the
//! manifests themselves, field by field, as the admission controller reads them.

use crate::common;

use serde_json::Value;

/// Every document under k8s/, with its file.
fn documents() -> Vec<(String, Value)> {
    common::yaml_files("k8s")
        .iter()
        .flat_map(|path| {
            let file = path.display().to_string();
            common::yaml_documents(path)
                .into_iter()
                .map(move |doc| (file.clone(), doc))
        })
        .collect()
}

/// The pod spec of a workload object, if it is one.
fn pod_spec(obj: &Value) -> Option<&Value> {
    match obj["kind"].as_str()? {
        "Pod" => Some(&obj["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some(&obj["spec"]["template"]["spec"])
        }
        "CronJob" => Some(&obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// Problems of one pod spec under the restricted profile.
fn restricted_violations(spec: &Value) -> Vec<String> {
    let mut v = Vec::new();
    let psc = &spec["securityContext"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[host] == true {
            v.push(format!("{host}: true"));
        }
    }
    const VOLUMES: [&str; 8] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for vol in spec["volumes"].as_array().into_iter().flatten() {
        let kinds: Vec<&String> = vol
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "name")
            .collect();
        if !kinds.iter().all(|k| VOLUMES.contains(&k.as_str())) {
            v.push(format!("volume {}: type {kinds:?}", vol["name"]));
        }
    }
    let seccomp_ok = |sc: &Value| {
        matches!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten());
    let mut n = 0;
    for c in containers {
        n += 1;
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            v.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != false {
            v.push(format!("{name}: allowPrivilegeEscalation must be false"));
        }
        let non_root = sc["runAsNonRoot"] == true
            || (sc["runAsNonRoot"].is_null() && psc["runAsNonRoot"] == true);
        if !non_root {
            v.push(format!("{name}: runAsNonRoot must be true"));
        }
        if sc["runAsUser"] == 0 || (sc["runAsUser"].is_null() && psc["runAsUser"] == 0) {
            v.push(format!("{name}: runAsUser 0"));
        }
        if !(seccomp_ok(sc) || (sc["seccompProfile"].is_null() && seccomp_ok(psc))) {
            v.push(format!(
                "{name}: seccompProfile must be RuntimeDefault or Localhost"
            ));
        }
        let caps = &sc["capabilities"];
        if !caps["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"))
        {
            v.push(format!("{name}: capabilities.drop must include ALL"));
        }
        for add in caps["add"].as_array().into_iter().flatten() {
            if add != "NET_BIND_SERVICE" {
                v.push(format!("{name}: capability {add} added"));
            }
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["hostPort"].as_u64().is_some_and(|h| h != 0) {
                v.push(format!("{name}: hostPort"));
            }
        }
    }
    if n == 0 {
        v.push("no containers".into());
    }
    v
}

#[test]
fn every_workload_passes_the_restricted_profile() {
    let docs = documents();
    let mut workloads = 0;
    let mut problems = Vec::new();
    for (file, obj) in &docs {
        if let Some(spec) = pod_spec(obj) {
            workloads += 1;
            for p in restricted_violations(spec) {
                problems.push(format!(
                    "{file}: {} {}: {p}",
                    obj["kind"], obj["metadata"]["name"]
                ));
            }
        }
    }
    assert!(workloads >= 3, "found {workloads} workloads in k8s/");
    assert!(problems.is_empty(), "{problems:#?}");
    let ns = docs
        .iter()
        .find(|(_, o)| o["kind"] == "Namespace")
        .expect("a Namespace in k8s/");
    assert_eq!(
        ns.1["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

#[test]
fn the_checker_rejects_what_restricted_rejects() {
    // The pod the manifests used before (root agent with capabilities) fails, rule by rule.
    let old: Value = serde_yaml::from_str(
        r#"
containers:
  - name: spark
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: { drop: [ALL], add: [SETUID, SETGID] }
volumes:
  - { name: h, hostPath: { path: /var } }
hostNetwork: true
"#,
    )
    .unwrap();
    let v = restricted_violations(&old).join("\n");
    for rule in [
        "runAsNonRoot",
        "seccompProfile",
        "capability \"SETUID\"",
        "hostPath",
        "hostNetwork",
    ] {
        assert!(v.contains(rule), "{rule} not reported:\n{v}");
    }
}
