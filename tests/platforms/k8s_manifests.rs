#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Validation of the Kubernetes manifests (k8s/) and the KubeDirector app (kubedirector/) as far as
//! this machine allows (no cluster): every document validates, strictly, against the real API
//! schemas of Kubernetes 1.30 to 1.34 (`kubernetes-validate`) and KubeDirector's CRDs
//! (tests/fixtures/kubedirector-crd/), and a planted unknown field fails; kinds and required fields
//! are there, images, env, ports, services, limits and the cluster-file ConfigMap agree with each
//! other and with the image; and the agent binary itself resolves the cluster file and KubeDirector
//! configmeta.json documents into the expected role, peers and master URL and renders them.

use crate::common;

use common::{repo, yaml_documents as documents, yaml_files};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// All documents under k8s/ except the kustomization, keyed by (kind, name).
fn k8s_objects() -> BTreeMap<(String, String), Value> {
    let mut objects = BTreeMap::new();
    for file in yaml_files("k8s") {
        if file.ends_with("kustomization.yaml") {
            continue;
        }
        for doc in documents(&file) {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no kind", file.display()));
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: {kind} without metadata.name", file.display()));
            assert!(
                doc["apiVersion"].is_string(),
                "{}: {kind}/{name} without apiVersion",
                file.display()
            );
            let key = (kind.to_string(), name.to_string());
            let what = format!("{kind}/{name}");
            assert!(objects.insert(key, doc).is_none(), "duplicate {what}");
        }
    }
    objects
}

/// The ports the image EXPOSEs (docker/Dockerfile).
fn exposed_ports() -> BTreeSet<u64> {
    let dockerfile = std::fs::read_to_string(repo().join("docker/Dockerfile")).unwrap();
    dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|l| l.split_whitespace().map(|p| p.parse::<u64>().unwrap()))
        .collect()
}

/// Kubernetes quantity → millicores / bytes (the subset the manifests use).
fn cpu_millis(q: &Value) -> u64 {
    let s = q
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| q.to_string());
    match s.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => (s.parse::<f64>().unwrap() * 1000.0) as u64,
    }
}
fn bytes(q: &Value) -> u64 {
    let s = q.as_str().unwrap();
    for (suffix, mult) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * mult;
        }
    }
    s.parse().unwrap()
}

const AGENT_CAPS: [&str; 9] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
];

#[test]
fn kustomization_lists_every_manifest() {
    let kust = &documents(&repo().join("k8s/kustomization.yaml"))[0];
    assert_eq!(kust["kind"], "Kustomization");
    let listed: BTreeSet<String> = kust["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let present: BTreeSet<String> = yaml_files("k8s")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present);
    assert_eq!(kust["images"][0]["name"], "sparkvisor-spark");
}

#[test]
fn workloads_agree_with_services_configmap_image_and_roles() {
    let objects = k8s_objects();
    let kinds: BTreeSet<&str> = objects.keys().map(|(k, _)| k.as_str()).collect();
    for kind in &kinds {
        assert!(
            [
                "Namespace",
                "ConfigMap",
                "Service",
                "StatefulSet",
                "Deployment"
            ]
            .contains(kind),
            "unexpected kind {kind}"
        );
    }
    let exposed = exposed_ports();
    let mut modes = BTreeSet::new();
    let workloads: Vec<&Value> = objects
        .iter()
        .filter(|((k, _), _)| k == "StatefulSet" || k == "Deployment")
        .map(|(_, v)| v)
        .collect();
    assert!(
        workloads.len() >= 3,
        "master, workers and notebook workloads"
    );
    for w in workloads {
        let name = w["metadata"]["name"].as_str().unwrap();
        assert_eq!(w["metadata"]["namespace"], "spark", "{name}");
        let pod_labels = w["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .unwrap();
        for (k, v) in w["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(
                pod_labels.get(k),
                Some(v),
                "{name}: selector label {k} not on the pods"
            );
        }
        // The governing headless Service exists and selects these pods.
        if w["kind"] == "StatefulSet" {
            let svc_name = w["spec"]["serviceName"].as_str().unwrap();
            let svc = &objects[&("Service".to_string(), svc_name.to_string())];
            assert_eq!(
                svc["spec"]["clusterIP"], "None",
                "{svc_name} must be headless"
            );
            for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
                assert_eq!(
                    pod_labels.get(k),
                    Some(v),
                    "Service {svc_name} does not select {name}"
                );
            }
        }
        let pod = &w["spec"]["template"]["spec"];
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(
            grace > 10,
            "{name}: the grace must exceed the agent's total stop grace (10 s)"
        );
        let container = &pod["containers"][0];
        let image = container["image"].as_str().unwrap();
        assert!(
            image.starts_with("sparkvisor-spark"),
            "{name}: image {image}"
        );
        let env: BTreeMap<&str, &str> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap(),
                    e["value"].as_str().unwrap_or(""),
                )
            })
            .collect();
        let mode = env["SPARK_MODE"];
        assert!(
            repo().join("roles").join(format!("{mode}.yaml")).exists(),
            "{name}: SPARK_MODE={mode} is not a built-in role"
        );
        modes.insert(mode.to_string());
        // The cluster file comes from the spark-cluster ConfigMap, mounted where SPARKVISOR_CONFIG says.
        let config_path = Path::new(env["SPARKVISOR_CONFIG"]);
        let mount = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| config_path.starts_with(m["mountPath"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{name}: SPARKVISOR_CONFIG is not under a mount"));
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        let cm_name = volume["configMap"]["name"].as_str().unwrap();
        let cm = &objects[&("ConfigMap".to_string(), cm_name.to_string())];
        let key = config_path
            .strip_prefix(mount["mountPath"].as_str().unwrap())
            .unwrap();
        assert!(
            cm["data"][key.to_str().unwrap()].is_string(),
            "{name}: ConfigMap {cm_name} has no {key:?}"
        );
        // Limits are what the agent sizes from: set, and equal to requests (Guaranteed QoS).
        let res = &container["resources"];
        assert!(
            cpu_millis(&res["limits"]["cpu"]) >= 1000,
            "{name}: cpu limit"
        );
        assert!(
            bytes(&res["limits"]["memory"]) >= 1 << 30,
            "{name}: memory limit"
        );
        assert_eq!(res["limits"], res["requests"], "{name}: requests = limits");
        for p in container["ports"].as_array().unwrap() {
            let port = p["containerPort"].as_u64().unwrap();
            assert!(
                exposed.contains(&port),
                "{name}: port {port} not EXPOSEd by the image"
            );
        }
        assert_eq!(
            container["readinessProbe"]["exec"]["command"][0], "sparkvisor",
            "{name}"
        );
        assert_eq!(
            container["readinessProbe"]["exec"]["command"][1], "health",
            "{name}"
        );
        let sc = &container["securityContext"];
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
        for cap in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            assert!(
                AGENT_CAPS.contains(&cap.as_str().unwrap()),
                "{name}: extra capability {cap}"
            );
        }
    }
    assert_eq!(
        modes,
        ["master", "notebook", "worker"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    // Services point at ports the pods expose.
    for ((kind, name), svc) in &objects {
        if kind != "Service" {
            continue;
        }
        for p in svc["spec"]["ports"].as_array().unwrap() {
            let target = p["targetPort"]
                .as_u64()
                .unwrap_or_else(|| p["port"].as_u64().unwrap());
            assert!(exposed.contains(&target), "Service {name}: port {target}");
        }
    }
}

#[test]
fn cluster_file_names_the_master_statefulset_pod() {
    let objects = k8s_objects();
    let cm = &objects[&("ConfigMap".to_string(), "spark-cluster".to_string())];
    let cluster: Value =
        serde_yaml::from_str(cm["data"]["cluster.yaml"].as_str().unwrap()).unwrap();
    let master = &objects[&("StatefulSet".to_string(), "spark-master".to_string())];
    let expected = format!(
        "{}-0.{}.{}.svc.cluster.local",
        master["metadata"]["name"].as_str().unwrap(),
        master["spec"]["serviceName"].as_str().unwrap(),
        master["metadata"]["namespace"].as_str().unwrap()
    );
    assert_eq!(cluster["peers"]["master"][0], expected.as_str());
}

/// Runs the agent binary with `env` (and the repo's roles/templates) and returns (code, stdout, stderr).
fn sparkvisor(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(common::bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SPARKVISOR_ROLES", repo().join("roles"))
        .env("SPARKVISOR_TEMPLATES", repo().join("templates"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn inspect(env: &[(&str, &str)]) -> Value {
    let (code, out, err) = sparkvisor(&["inspect", "--json"], env);
    assert_eq!(code, 0, "sparkvisor inspect --json: {err}");
    serde_json::from_str(&out).unwrap()
}

fn setting<'a>(report: &'a Value, key: &str) -> &'a Value {
    &report["config"]["settings"][key]["value"]
}

#[test]
fn the_agent_resolves_the_configmap_cluster_file() {
    let objects = k8s_objects();
    let cm = &objects[&("ConfigMap".to_string(), "spark-cluster".to_string())];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, cm["data"]["cluster.yaml"].as_str().unwrap()).unwrap();
    let file = file.to_str().unwrap();
    // `check` validates service users against this system's /etc/passwd, as `run` would; the
    // image's `spark` user does not exist on the test host, so name one that does.
    let (code, _, err) = sparkvisor(
        &["check"],
        &[
            ("SPARKVISOR_CONFIG", file),
            ("SPARK_MODE", "worker"),
            ("SPARK_DAEMON_USER", "root"),
        ],
    );
    assert_eq!(
        code, 0,
        "sparkvisor check on the ConfigMap's cluster file: {err}"
    );
    let report = inspect(&[("SPARKVISOR_CONFIG", file), ("SPARK_MODE", "worker")]);
    assert_eq!(report["config"]["role"]["value"], "worker");
    assert_eq!(
        setting(&report, "spark.master_url"),
        "spark://spark-master-0.spark-master.spark.svc.cluster.local:7077"
    );
    assert_eq!(
        report["config"]["settings"]["spark.master_url"]["source"]["kind"],
        "derived"
    );
}

/// KubeDirector's role ids → sparkvisor roles (docs/manifests.md).
const KD_ROLES: [(&str, &str); 3] = [
    ("spark-master", "master"),
    ("spark-worker", "worker"),
    ("notebook-server", "notebook"),
];

#[test]
fn kubedirector_app_cluster_and_configmeta_examples_agree() {
    let app = &documents(&repo().join("kubedirector/spark-app.yaml"))[0];
    assert_eq!(app["kind"], "KubeDirectorApp");
    assert_eq!(app["apiVersion"], "kubedirector.hpe.com/v1beta1");
    let spec = &app["spec"];
    for field in [
        "label",
        "distroID",
        "version",
        "configSchemaVersion",
        "defaultImageRepoTag",
        "roles",
        "services",
        "config",
    ] {
        assert!(
            !spec[field].is_null(),
            "KubeDirectorApp spec.{field} missing"
        );
    }
    assert!(spec["defaultImageRepoTag"]
        .as_str()
        .unwrap()
        .starts_with("sparkvisor-spark"));
    assert_eq!(
        spec["systemdRequired"], false,
        "the image's ENTRYPOINT is sparkvisor, not systemd"
    );
    // Without a config package KubeDirector never writes configmeta.json ("initial config
    // skipped"): the package ships in the image, its startscript in kubedirector/appconfig/.
    assert_eq!(
        spec["defaultConfigPackage"]["packageURL"],
        "file:///opt/sparkvisor/kubedirector/appconfig.tgz"
    );
    let startscript =
        std::fs::read_to_string(repo().join("kubedirector/appconfig/startscript")).unwrap();
    assert!(
        startscript.contains("sparkvisor kubedirector"),
        "{startscript}"
    );
    let build = std::fs::read_to_string(repo().join("docker/build-image.sh")).unwrap();
    assert!(
        build.contains("rootfs/opt/sparkvisor/kubedirector/appconfig.tgz"),
        "build-image.sh packs the config package where packageURL points"
    );
    let role_ids: BTreeSet<&str> = spec["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(role_ids, KD_ROLES.iter().map(|(id, _)| *id).collect());
    for r in spec["roles"].as_array().unwrap() {
        let card = r["cardinality"].as_str().unwrap();
        assert!(
            card.trim_end_matches('+').parse::<u32>().is_ok(),
            "cardinality {card}"
        );
    }
    let exposed = exposed_ports();
    let mut service_ports = BTreeMap::new();
    for s in spec["services"].as_array().unwrap() {
        let port = s["endpoint"]["port"].as_u64().unwrap();
        assert!(
            exposed.contains(&port),
            "service {} port {port} not EXPOSEd",
            s["id"]
        );
        service_ports.insert(s["id"].as_str().unwrap().to_string(), port);
    }
    let selected: BTreeSet<&str> = spec["config"]["selectedRoles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(selected, role_ids);
    for rs in spec["config"]["roleServices"].as_array().unwrap() {
        assert!(role_ids.contains(rs["roleID"].as_str().unwrap()));
        for id in rs["serviceIDs"].as_array().unwrap() {
            assert!(
                service_ports.contains_key(id.as_str().unwrap()),
                "unknown service {id}"
            );
        }
    }
    let cluster = &documents(&repo().join("kubedirector/spark-cluster.yaml"))[0];
    assert_eq!(cluster["kind"], "KubeDirectorCluster");
    assert_eq!(cluster["spec"]["app"], app["metadata"]["name"]);
    for r in cluster["spec"]["roles"].as_array().unwrap() {
        assert!(
            role_ids.contains(r["id"].as_str().unwrap()),
            "cluster role {}",
            r["id"]
        );
        assert_eq!(r["resources"]["limits"], r["resources"]["requests"]);
    }
    // The configmeta.json examples are what KubeDirector would inject for this app and cluster.
    for (role_id, role) in KD_ROLES {
        let path = repo().join(format!("kubedirector/examples/configmeta-{role}.json"));
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(meta["node"]["role_id"], role_id, "{}", path.display());
        let roles = &meta["nodegroups"]["1"]["roles"];
        for id in &role_ids {
            assert!(
                roles[*id]["fqdns"].is_array(),
                "{}: nodegroups.1.roles.{id}",
                path.display()
            );
            for (svc, entry) in roles[*id]["services"].as_object().unwrap() {
                let port = service_ports[svc];
                for ep in entry["endpoints"].as_array().unwrap() {
                    assert!(
                        ep.as_str().unwrap().ends_with(&format!(":{port}")),
                        "{svc}: {ep}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_agent_resolves_and_renders_kubedirector_configmeta() {
    let master_fqdn = "kdss-ab12c-0.kdhs-7x2qp.spark.svc.cluster.local";
    let cluster = &documents(&repo().join("kubedirector/spark-cluster.yaml"))[0];
    for (role_id, role) in KD_ROLES {
        let file = role;
        let meta = repo().join(format!("kubedirector/examples/configmeta-{file}.json"));
        let meta_s = meta.to_str().unwrap();
        // The container's environment as the example KubeDirectorCluster sets it for this role.
        let cr_role = cluster["spec"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == role_id)
            .unwrap();
        let mut env: Vec<(&str, &str)> = cr_role["env"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|v| (v["name"].as_str().unwrap(), v["value"].as_str().unwrap()))
                    .filter(|(k, _)| *k != "SPARKVISOR_CONFIGMETA_WAIT")
                    .collect()
            })
            .unwrap_or_default();
        env.push(("SPARKVISOR_CONFIGMETA", meta_s));
        let report = inspect(&env);
        assert_eq!(report["config"]["role"]["value"], role, "{file}");
        assert_eq!(
            report["config"]["role"]["source"]["kind"], "config_meta",
            "{file}"
        );
        assert_eq!(
            setting(&report, "spark.master_url"),
            format!("spark://{master_fqdn}:7077").as_str(),
            "{file}"
        );
        assert_eq!(report["config"]["peers"]["master"]["value"][0], master_fqdn);
        let own: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
        assert_eq!(
            report["config"]["node"]["fqdn"]["value"],
            own["node"]["fqdn"]
        );
        // Rendering: the role's files name the master the configmeta points at.
        let out = tempfile::tempdir().unwrap();
        let (code, _, err) = sparkvisor(&["render", "--out", out.path().to_str().unwrap()], &env);
        assert_eq!(code, 0, "render {file}: {err}");
        let rendered = walk(out.path());
        assert!(
            rendered.iter().any(|(_, text)| text.contains(master_fqdn)),
            "{file}: no rendered file names the master: {:?}",
            rendered.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
    }
}

fn walk(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            files.push((path, text));
        }
    }
    files
}

/// The Kubernetes releases users run whose schemas every manifest must pass (docs/manifests.md).
const KUBERNETES_VERSIONS: [&str; 5] = ["1.30", "1.31", "1.32", "1.33", "1.34"];

/// KubeDirector's CRDs, vendored with their notice (tests/fixtures/kubedirector-crd/NOTICE.md).
fn kubedirector_crds() -> Vec<PathBuf> {
    ["kubedirectorapps", "kubedirectorclusters"]
        .iter()
        .map(|k| {
            repo().join(format!(
                "tests/fixtures/kubedirector-crd/kubedirector.hpe.com_{k}_crd.yaml"
            ))
        })
        .collect()
}

/// Every manifest a user applies: k8s/ and the KubeDirector app and cluster.
fn manifest_files() -> Vec<PathBuf> {
    let mut files = yaml_files("k8s");
    files.extend(yaml_files("kubedirector"));
    files
}

/// Runs tests/fixtures/validate_manifests.py on `files` for `versions`: its exit code and one JSON
/// result per (document, version). None when kubernetes-validate is missing (and not under CI).
fn validate(files: &[PathBuf], versions: &[&str]) -> Option<(i32, Vec<Value>)> {
    let available = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::require(
        available,
        "python3 with kubernetes-validate (scripts/lib/prereqs.sh installs it)",
    ) {
        return None;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("tests/fixtures/validate_manifests.py"));
    for v in versions {
        cmd.args(["--version", v]);
    }
    for crd in kubedirector_crds() {
        cmd.arg("--crd").arg(crd);
    }
    let out = cmd.args(files).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(
        code,
        2,
        "the validator could not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Some((code, results))
}

#[test]
fn every_manifest_validates_strictly_against_kubernetes_1_30_to_1_34_and_kubedirector_crds() {
    let files = manifest_files();
    let Some((code, results)) = validate(&files, &KUBERNETES_VERSIONS) else {
        return;
    };
    let failures: Vec<&Value> = results.iter().filter(|r| r["ok"] != true).collect();
    assert!(failures.is_empty(), "schema violations: {failures:#?}");
    assert_eq!(code, 0);
    // Every document of every file, for every release: nothing left out.
    let documents: usize = files.iter().map(|f| documents(f).len()).sum();
    assert_eq!(results.len(), documents * KUBERNETES_VERSIONS.len());
    // Only kustomize's own file (never sent to the API server) has no API schema.
    for r in results.iter().filter(|r| !r["skipped"].is_null()) {
        assert_eq!(r["kind"], "Kustomization", "{r}");
    }
    let checked: BTreeSet<&str> = results
        .iter()
        .filter(|r| r["skipped"].is_null())
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "Namespace",
        "ConfigMap",
        "Service",
        "StatefulSet",
        "KubeDirectorApp",
        "KubeDirectorCluster",
    ] {
        assert!(checked.contains(kind), "{kind} not validated: {checked:?}");
    }
}

/// Where a field that no schema has is planted in each kind: the object's metadata, and a place
/// deep in its spec (a typo in a container, a service port, a KubeDirector endpoint or resources).
fn plant_sites(kind: &str) -> Vec<&'static [&'static str]> {
    let deep: &'static [&'static str] = match kind {
        "StatefulSet" | "Deployment" => &["spec", "template", "spec", "containers", "0"],
        "Service" => &["spec", "ports", "0"],
        "KubeDirectorApp" => &["spec", "services", "0", "endpoint"],
        "KubeDirectorCluster" => &["spec", "roles", "0", "resources"],
        _ => &[],
    };
    vec![&["metadata"], deep]
}

fn at<'a>(doc: &'a mut Value, path: &[&str]) -> &'a mut Value {
    path.iter().fold(doc, |v, key| match key.parse::<usize>() {
        Ok(i) => &mut v[i],
        Err(_) => &mut v[*key],
    })
}

#[test]
fn a_planted_unknown_field_fails_validation_in_every_manifest() {
    const PLANTED: &str = "sparkvisorPlantedField";
    let dir = tempfile::tempdir().unwrap();
    let mut planted = Vec::new();
    for file in manifest_files() {
        for (i, doc) in documents(&file).into_iter().enumerate() {
            let kind = doc["kind"].as_str().unwrap().to_string();
            if kind == "Kustomization" {
                continue;
            }
            for site in plant_sites(&kind) {
                let mut bad = doc.clone();
                let target = at(&mut bad, site);
                assert!(
                    target.is_object(),
                    "{}: {kind} has no {site:?}",
                    file.display()
                );
                // A string: free-form maps (labels, data) would take it, a schema'd object must not.
                target[PLANTED] = Value::from("x");
                let name = format!(
                    "{}-{i}-{}.json",
                    file.file_stem().unwrap().to_string_lossy(),
                    planted.len()
                );
                let path = dir.path().join(name);
                std::fs::write(&path, serde_json::to_vec(&bad).unwrap()).unwrap();
                planted.push((path, format!("{kind} at {}", site.join("."))));
            }
        }
    }
    let paths: Vec<PathBuf> = planted.iter().map(|(p, _)| p.clone()).collect();
    let versions = ["1.30", "1.34"];
    let Some((code, results)) = validate(&paths, &versions) else {
        return;
    };
    assert_eq!(code, 1, "the validator passed planted fields");
    assert_eq!(results.len(), planted.len() * versions.len());
    for r in &results {
        let (_, what) = planted
            .iter()
            .find(|(p, _)| p.to_str() == r["file"].as_str())
            .unwrap();
        assert_eq!(r["ok"], false, "a planted field passed: {what}: {r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains(PLANTED),
            "{what}: failed for another reason: {error}"
        );
    }
}
