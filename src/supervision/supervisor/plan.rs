//! The plan of one service, built once (at start, and by each reload) from its expanded spec,
//! the user database and the agent's credentials of that moment: the state machine's policy, the
//! signals it is stopped with and forwarded, the ids, umask and capability set it runs with and
//! the privilege drop of its spawns, its probes and its `wait_for` targets. The supervisor and
//! the spawner only read it.

use crate::config::role::{Probe, ServiceSpec};
use crate::supervision::probe::ProbePlan;
use crate::supervision::remote_wait::WaitPlan;
use crate::supervision::service::Policy;
use crate::sys::caps::CapabilitySet;
use crate::sys::privileges::{AgentCredentials, PrivilegePlan};
use crate::sys::users::UserIds;

/// One service as the supervisor runs it: its expanded spec and what the state machine needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    /// Service name (unique in the role).
    pub name: String,
    /// The expanded spec (no `{{ }}` left).
    pub spec: ServiceSpec,
    /// The state machine's view of the spec.
    pub policy: Policy,
    /// Signal numbers forwarded to its process group.
    pub forward_signals: Vec<i32>,
    /// Stop/reload signal numbers this service may send the agent (`agent_signals`).
    pub agent_signals: Vec<i32>,
    /// The ids its role names (`None`: the agent's own), resolved once against the user
    /// database of the moment its definition was built.
    pub user: Option<UserIds>,
    /// Its umask (`umask:`, default [`DEFAULT_UMASK`]).
    pub umask: u32,
    /// The only capabilities it keeps when the agent is root (`capabilities:`), parsed once.
    pub capabilities: CapabilitySet,
    /// The privilege drop of each of its spawns (the service and its exec probes), planned once
    /// against the agent's credentials: a root agent drops to [`Self::user`] keeping
    /// [`Self::capabilities`]; a non-root agent runs it as itself with no capabilities.
    pub privileges: PrivilegePlan,
    /// Its probes with their targets parsed once.
    pub probes: Probes,
    /// Its `wait_for:` gate with its targets parsed once.
    pub wait: Option<WaitPlan>,
}

/// A service's probes (`ready`, `health`, `stop.drain.until`), each parsed into a [`ProbePlan`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Probes {
    /// Readiness.
    pub ready: Option<ProbePlan>,
    /// Liveness.
    pub health: Option<ProbePlan>,
    /// The drain's end.
    pub drain: Option<ProbePlan>,
}

impl Probes {
    /// The plans of `spec`'s probes; the error names the first bad one and why.
    fn new(name: &str, spec: &ServiceSpec) -> Result<Self, String> {
        let plan = |what: &str, probe: Option<&Probe>| {
            probe
                .map(ProbePlan::new)
                .transpose()
                .map_err(|why| format!("service {name}: `{what}` probe: {why}"))
        };
        Ok(Self {
            ready: plan("ready", spec.ready.as_ref())?,
            health: plan("health", spec.health.as_ref())?,
            drain: plan(
                "stop.drain.until",
                spec.stop.drain.as_ref().and_then(|d| d.until.as_ref()),
            )?,
        })
    }
}

/// The umask of a service without `umask:`.
pub const DEFAULT_UMASK: u32 = 0o022;

impl ServiceDef {
    /// Builds the definition of a service running as `user` (resolved by the caller against the
    /// user database of this moment, see [`crate::sys::users`]) under an agent holding `agent`;
    /// `signal_by_name` resolves `stop.signal`, `forward_signals` and `agent_signals`. Every problem
    /// is returned (an invalid umask, unknown capabilities, the first bad probe target, a bad
    /// `wait_for` target, then the first unknown signal), each naming the service.
    pub fn new(
        name: &str,
        spec: ServiceSpec,
        user: Option<UserIds>,
        agent: &AgentCredentials,
        signal_by_name: impl Fn(&str) -> Option<i32>,
    ) -> Result<Self, Vec<String>> {
        let umask = match spec.umask.as_deref() {
            None => Ok(DEFAULT_UMASK),
            Some(text) => crate::config::role::parse_octal(text, 0o777).ok_or_else(|| {
                format!("service {name}: invalid umask {text:?}: expected octal such as 0022")
            }),
        };
        let capabilities =
            CapabilitySet::parse(&spec.capabilities).map_err(|e| format!("service {name}: {e}"));
        let probes = Probes::new(name, &spec);
        let wait = spec
            .wait_for
            .as_ref()
            .map(WaitPlan::new)
            .transpose()
            .map_err(|why| format!("service {name}: {why}"));
        let rest = Self::signals(name, &spec, signal_by_name);
        match (umask, capabilities, probes, wait, rest) {
            (
                Ok(umask),
                Ok(capabilities),
                Ok(probes),
                Ok(wait),
                Ok((policy, forward_signals, agent_signals)),
            ) => Ok(Self {
                name: name.to_string(),
                privileges: Self::privileges(user.as_ref(), capabilities, agent),
                spec,
                policy,
                forward_signals,
                agent_signals,
                user,
                umask,
                capabilities,
                probes,
                wait,
            }),
            (umask, capabilities, probes, wait, rest) => Err(umask
                .err()
                .into_iter()
                .chain(capabilities.err())
                .chain(probes.err())
                .chain(wait.err())
                .chain(rest.err())
                .collect()),
        }
    }

    /// The drop of its spawns: a non-root agent cannot change ids, so every service runs as the
    /// agent's own user (the image's `spark`, or an arbitrary OpenShift uid) with no capabilities
    /// (app.rs says so once); `no_new_privs` always.
    fn privileges(
        user: Option<&UserIds>,
        capabilities: CapabilitySet,
        agent: &AgentCredentials,
    ) -> PrivilegePlan {
        if agent.is_root() {
            PrivilegePlan::new(user.cloned(), capabilities, true, agent)
        } else {
            PrivilegePlan::new(None, CapabilitySet::EMPTY, true, agent)
        }
    }

    /// The state machine's policy, the forwarded signals and the signals the service may send
    /// the agent, with every signal name resolved.
    fn signals(
        name: &str,
        spec: &ServiceSpec,
        signal_by_name: impl Fn(&str) -> Option<i32>,
    ) -> Result<(Policy, Vec<i32>, Vec<i32>), String> {
        let stop_signal = signal_by_name(&spec.stop.signal)
            .ok_or_else(|| format!("service {name}: unknown stop signal {:?}", spec.stop.signal))?;
        let numbers = |names: &[String]| {
            names
                .iter()
                .map(|s| {
                    signal_by_name(s).ok_or_else(|| format!("service {name}: unknown signal {s:?}"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let forward_signals = numbers(&spec.forward_signals)?;
        let agent_signals = numbers(&spec.agent_signals)?;
        let policy = Policy {
            restart: spec.restart,
            backoff: spec.backoff.clone(),
            stop_signal,
            grace: spec.stop.grace.0,
            ready_probe: spec.ready.is_some(),
            health_threshold: spec.health.as_ref().map(|p| p.threshold.max(1)),
            drain: match &spec.stop.drain {
                Some(d) => Some(crate::supervision::service::DrainPolicy {
                    signal: signal_by_name(&d.signal).ok_or_else(|| {
                        format!("service {name}: unknown drain signal {:?}", d.signal)
                    })?,
                    grace: d.grace.0,
                    probe: d.until.is_some(),
                }),
                None => None,
            },
        };
        Ok((policy, forward_signals, agent_signals))
    }
}
