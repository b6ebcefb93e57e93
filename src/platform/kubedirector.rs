//! `sparkvisor kubedirector`: KubeDirector's app setup hooks (docs/kubedirector.md).
//!
//! KubeDirector drives an app through a config package whose `startscript` it runs inside each
//! member's container: `--configure` once (in the background, polling the exit status it appends to
//! `/opt/guestconfig/configure.status`), then `--addnodes`/`--delnodes` with `--nodegroup`, `--role`
//! and `--fqdns` on every ready member when the cluster grows or shrinks, each time after it has
//! rewritten `/etc/guestconfig/configmeta.json`. The package shipped in the image has a one-line
//! startscript that hands over to this command, which talks to the agent already running as PID 1:
//! no `configcli`, no second copy of the configuration logic.
//!
//! - `--configure`: resolves this node from configmeta.json as the agent does (an invalid config is
//!   reported on stderr, exit 78), then waits until the agent reports every required service ready
//!   (exit 0), a critical service failed for good (exit 1, the reason on stderr), or the deadline
//!   (`SPARKVISOR_KD_TIMEOUT`, default 10 minutes) passes (exit 1).
//! - `--addnodes`/`--delnodes`: checks that configmeta.json already lists (or no longer lists) the
//!   given FQDNs under the given node group and role — otherwise exit 1 so KubeDirector keeps the
//!   notification queued and retries —, validates the new config, then sends the agent SIGHUP: it
//!   re-reads configmeta.json, re-renders, and restarts only the services whose command or files
//!   changed (the agent also reloads on its own when configmeta.json is rewritten; the signal makes
//!   the hook independent of that). Waits for the services to be ready again, as `--configure`.
//! - `--reconnect` (KubeDirector's "connections changed" event): the same reload, no FQDN check.
//! - Live app upgrades (newer KubeDirector, `doc/live-app-upgrade.md` upstream):
//!   `--pod_upgraded`/`--pod_reverted` run on a member whose container was just recreated from the
//!   new (or the previous) image, so its agent started from that image: answered as `--configure`
//!   (validate, wait for the services). `--role_upgraded`, `--role_reverted`, `--cluster_upgraded`
//!   and `--cluster_reverted` announce that other members finished: answered as `--reconnect`
//!   (reload configmeta.json, restart only what changed, wait for the services).

use std::time::{Duration, Instant};

use crate::error::{exit_code, Diagnostic, Fatal};

/// The arguments KubeDirector passes to a config package's startscript.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("event")
        .required(true)
        .args([
            "configure", "addnodes", "delnodes", "reconnect", "pod_upgraded", "pod_reverted",
            "role_upgraded", "role_reverted", "cluster_upgraded", "cluster_reverted",
        ])
))]
pub struct HookArgs {
    /// Initial configuration of this member (run once, in the background).
    #[arg(long)]
    configure: bool,
    /// Members were added: `--nodegroup N --role ROLE --fqdns A,B`.
    #[arg(long)]
    addnodes: bool,
    /// Members are being removed: `--nodegroup N --role ROLE --fqdns A,B`.
    #[arg(long)]
    delnodes: bool,
    /// The cluster's connections changed: reload.
    #[arg(long)]
    reconnect: bool,
    /// This member's container was recreated from the upgraded image: as `--configure`.
    #[arg(long = "pod_upgraded")]
    pod_upgraded: bool,
    /// This member's container was recreated from the previous image (rollback): as `--configure`.
    #[arg(long = "pod_reverted")]
    pod_reverted: bool,
    /// Every member of a role was upgraded: reload, as `--reconnect`.
    #[arg(long = "role_upgraded")]
    role_upgraded: bool,
    /// Every upgraded member of a role was rolled back: reload, as `--reconnect`.
    #[arg(long = "role_reverted")]
    role_reverted: bool,
    /// Every role finished its upgrade: reload, as `--reconnect`.
    #[arg(long = "cluster_upgraded")]
    cluster_upgraded: bool,
    /// Every role finished its rollback: reload, as `--reconnect`.
    #[arg(long = "cluster_reverted")]
    cluster_reverted: bool,
    /// The node group of the changed members (KubeDirector uses "1").
    #[arg(long)]
    nodegroup: Option<String>,
    /// The KubeDirector role id of the changed members.
    #[arg(long)]
    role: Option<String>,
    /// Comma-separated FQDNs of the changed members.
    #[arg(long)]
    fqdns: Option<String>,
}

/// Environment variable: how long a hook waits for the services to be ready.
pub const TIMEOUT_VAR: &str = "SPARKVISOR_KD_TIMEOUT";

/// Runs one hook; the exit code is what KubeDirector records.
pub fn run(args: HookArgs) -> Result<i32, Fatal> {
    let env = crate::startup::node::process_env();
    let timeout = match env.get(TIMEOUT_VAR) {
        Some(text) => {
            crate::config::role::DurationSpec::parse(text)
                .map_err(|e| {
                    Fatal::Config(Diagnostic::new(format!("env {TIMEOUT_VAR}"), e).into())
                })?
                .0
        }
        None => Duration::from_secs(600),
    };
    // A notification configmeta.json does not reflect yet is refused before anything else: the
    // agent would re-read the old file.
    let event = if args.addnodes {
        Some(("addnodes", true))
    } else if args.delnodes {
        Some(("delnodes", false))
    } else {
        None
    };
    if let Some((name, added)) = event {
        let (ng, kd_role, fqdns) = match (&args.nodegroup, &args.role, &args.fqdns) {
            (Some(ng), Some(r), Some(f)) => (ng, r, f),
            _ => {
                crate::errln!(
                    "sparkvisor kubedirector --{name}: needs --nodegroup, --role and --fqdns"
                );
                return Ok(exit_code::FAILURE);
            }
        };
        if let Err(why) = configmeta_agrees(&env, ng, kd_role, fqdns, added) {
            crate::errln!("sparkvisor kubedirector --{name}: {why}");
            return Ok(exit_code::FAILURE);
        }
    }
    // Validates the (new) config exactly as the agent will resolve it: a hook that reports success
    // on a config the agent then rejects would leave KubeDirector believing in a working member.
    let node = crate::startup::node::resolve_node(None, &env)?;
    let services = node
        .render(&crate::config::role::templates_dir(&env))?
        .services;
    node.service_defs(services, &crate::sys::users::UserDb::system())?;
    let role = node.config.role.value.clone();

    // A member configured from scratch (its container, and so its agent, is new) is only waited
    // for; the others already run an agent that must re-read configmeta.json.
    let fresh = [
        ("configure", args.configure),
        ("pod_upgraded", args.pod_upgraded),
        ("pod_reverted", args.pod_reverted),
    ]
    .into_iter()
    .find_map(|(name, set)| set.then_some(name));
    if let Some(name) = fresh {
        crate::errln!("sparkvisor kubedirector --{name}: role {role}, waiting for its services");
    } else {
        let agent = crate::status::client::fetch_status()?.agent.pid;
        let pid = i32::try_from(agent)
            .map_err(|_| Fatal::Internal(format!("agent pid {agent} out of range")))?;
        crate::sys::process::send_signal(pid, crate::supervision::supervisor::signo::HUP).map_err(
            |source| Fatal::Sys {
                context: format!("signalling the agent (pid {pid}) to reload"),
                source,
            },
        )?;
        crate::errln!(
            "sparkvisor kubedirector: asked the agent (pid {pid}) to reload configmeta.json"
        );
    }
    wait_ready(&role, timeout)
}

/// Why configmeta.json does not (yet) reflect a change KubeDirector notified.
#[derive(Debug, thiserror::Error)]
enum NotApplied {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// configmeta.json's path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("{0}")]
    Parse(Diagnostic),
    /// Some FQDNs are not yet listed (added) or still listed (deleted).
    #[error(
        "{path} {} {} under nodegroups.{ng}.roles.{kd_role}.fqdns yet: not applied, retry later",
        if *added { "does not list" } else { "still lists" },
        wrong.join(", ")
    )]
    Fqdns {
        /// configmeta.json's path.
        path: String,
        /// The node group.
        ng: String,
        /// The KubeDirector role id.
        kd_role: String,
        /// True for an add notification.
        added: bool,
        /// The FQDNs that disagree.
        wrong: Vec<String>,
    },
}

/// Whether configmeta.json already reflects the notified change: every FQDN listed (added) or none
/// of them listed (deleted) under `nodegroups.<ng>.roles.<role>.fqdns`.
fn configmeta_agrees(
    env: &std::collections::BTreeMap<String, String>,
    ng: &str,
    kd_role: &str,
    fqdns: &str,
    added: bool,
) -> Result<(), NotApplied> {
    let path = env
        .get(crate::config::env::CONFIGMETA_VAR)
        .map_or(crate::config::env::DEFAULT_CONFIGMETA, String::as_str);
    let text = std::fs::read_to_string(path).map_err(|source| NotApplied::Read {
        path: path.to_string(),
        source,
    })?;
    let source = crate::config::source::SourceText::new(path, text);
    let meta = crate::config::configmeta::parse(&source).map_err(NotApplied::Parse)?;
    let listed: Vec<&str> = meta
        .nodegroups
        .get(ng)
        .and_then(|g| g.roles.get(kd_role))
        .map(|r| r.fqdns.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let wrong: Vec<String> = fqdns
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .filter(|f| listed.contains(f) != added)
        .map(str::to_string)
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(NotApplied::Fqdns {
            path: path.to_string(),
            ng: ng.to_string(),
            kd_role: kd_role.to_string(),
            added,
            wrong,
        })
    }
}

/// Waits until the agent reports every required service ready; a critical service that failed for
/// good, or the deadline, is a failure with the reason on stderr.
fn wait_ready(role: &str, timeout: Duration) -> Result<i32, Fatal> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match crate::status::client::fetch_health() {
            Ok(h) if h.healthy => {
                crate::outln!("sparkvisor: role {role}: every required service is ready");
                return Ok(exit_code::OK);
            }
            Ok(h) => h.reasons.join("; "),
            Err(e) => e.to_string(),
        };
        if let Ok(status) = crate::status::client::fetch_status() {
            let failed: Vec<String> = status
                .services
                .iter()
                .filter(|s| s.critical && s.state == crate::status::wire::ServiceState::Failed)
                .map(|s| s.name.clone())
                .collect();
            if !failed.is_empty() {
                crate::errln!(
                    "sparkvisor: role {role}: critical service(s) failed for good: {}",
                    failed.join(", ")
                );
                return Ok(exit_code::FAILURE);
            }
        }
        if Instant::now() >= deadline {
            crate::errln!("sparkvisor: role {role}: not ready after {timeout:?}: {last}");
            return Ok(exit_code::FAILURE);
        }
        // A client waiting on another process: there is nothing to block on but the socket's
        // answers, so it asks again shortly (the agent itself never polls).
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_must_match_configmeta() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("configmeta.json");
        std::fs::write(
            &path,
            r#"{"node": {"role_id": "spark-master"},
                "nodegroups": {"1": {"roles": {"spark-worker": {"fqdns": ["w0.d", "w1.d"]}}}}}"#,
        )
        .unwrap();
        let env = [(
            crate::config::env::CONFIGMETA_VAR.to_string(),
            path.display().to_string(),
        )]
        .into_iter()
        .collect();
        assert!(configmeta_agrees(&env, "1", "spark-worker", "w1.d", true).is_ok());
        assert!(configmeta_agrees(&env, "1", "spark-worker", "w2.d", false).is_ok());
        let e = configmeta_agrees(&env, "1", "spark-worker", "w1.d,w2.d", true).unwrap_err();
        assert!(e.to_string().contains("does not list w2.d"), "{e}");
        let e = configmeta_agrees(&env, "1", "spark-worker", "w0.d", false).unwrap_err();
        assert!(e.to_string().contains("still lists w0.d"), "{e}");
        // An unknown node group or role lists nobody.
        assert!(configmeta_agrees(&env, "2", "spark-worker", "w0.d", true).is_err());
    }
}
