//! `/metrics` in the Prometheus text exposition format (version 0.0.4), rendered from a [`Status`].

use std::fmt::Write as _;

use super::wire::Status;

/// Renders the node's metrics. Label values are escaped as the format requires.
pub fn render(status: &Status) -> String {
    let mut out = String::with_capacity(256 + status.services.len() * 512);
    let node = &status.node;
    header(
        &mut out,
        "sparkvisor_info",
        "gauge",
        "Constant 1, labelled with the agent version, node and role.",
    );
    let _ = writeln!(
        out,
        "sparkvisor_info{{version=\"{}\",hostname=\"{}\",role=\"{}\"}} 1",
        escape(&status.version),
        escape(&node.hostname),
        escape(&node.role)
    );

    type Metric = (&'static str, &'static str, &'static str);
    const SERVICE_METRICS: &[Metric] = &[
        (
            "sparkvisor_service_up",
            "gauge",
            "1 when a process of the service is running.",
        ),
        (
            "sparkvisor_service_ready",
            "gauge",
            "1 when the service passed its readiness check.",
        ),
        (
            "sparkvisor_service_restarts_total",
            "counter",
            "Restarts of the service since the agent started.",
        ),
        (
            "sparkvisor_service_last_exit_code",
            "gauge",
            "Shell-style code of the previous process (128+signal when killed); absent before the first exit.",
        ),
        (
            "sparkvisor_service_uptime_seconds",
            "gauge",
            "Seconds since the current process started.",
        ),
        (
            "sparkvisor_service_oom_kills_total",
            "counter",
            "Times the kernel's OOM killer killed the service's process since the agent started.",
        ),
    ];
    for (index, (name, kind, help)) in SERVICE_METRICS.iter().enumerate() {
        header(&mut out, name, kind, help);
        for s in &status.services {
            let value: Option<u64> = match index {
                0 => Some(u64::from(s.state.is_up())),
                1 => Some(u64::from(s.ready)),
                2 => Some(u64::from(s.restarts)),
                3 => s.last_exit.and_then(|e| match (e.code, e.signal) {
                    (Some(c), _) => u64::try_from(c & 0xff).ok(),
                    (None, Some(sig)) => u64::try_from((128 + sig) & 0xff).ok(),
                    (None, None) => None,
                }),
                4 => s.uptime_secs,
                _ => s.oom_kills,
            };
            if let Some(v) = value {
                let _ = writeln!(out, "{name}{{service=\"{}\"}} {v}", escape(&s.name));
            }
        }
    }
    header(
        &mut out,
        "sparkvisor_service_state",
        "gauge",
        "1 for the state the service is in.",
    );
    for s in &status.services {
        let _ = writeln!(
            out,
            "sparkvisor_service_state{{service=\"{}\",state=\"{}\"}} 1",
            escape(&s.name),
            s.state
        );
    }

    let agent = &status.agent;
    let agent_metrics: [(&str, &str, &str, u64); 3] = [
        (
            "sparkvisor_agent_resident_memory_bytes",
            "gauge",
            "Resident set size of the agent.",
            agent.rss_bytes,
        ),
        (
            "sparkvisor_zombies_reaped_total",
            "counter",
            "Processes other than services reaped by the agent.",
            agent.zombies_reaped,
        ),
        (
            "sparkvisor_agent_start_time_seconds",
            "gauge",
            "When the agent started, unix seconds.",
            agent.started_at,
        ),
    ];
    for (name, kind, help, value) in agent_metrics {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    if let Some(total) = agent.oom_kills_total {
        let name = "sparkvisor_cgroup_oom_kills_total";
        header(
            &mut out,
            name,
            "counter",
            "OOM kills in the container's memory cgroup (every process in it).",
        );
        let _ = writeln!(out, "{name} {total}");
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::wire::*;
    use super::*;

    #[test]
    fn renders_services_and_agent() {
        let svc = ServiceStatus {
            name: "we\"ird\nname".into(),
            state: ServiceState::Backoff,
            pid: None,
            started_at: None,
            uptime_secs: None,
            restarts: 4,
            last_exit: Some(LastExit {
                code: None,
                signal: Some(9),
            }),
            ready: false,
            healthy: None,
            critical: true,
            required: true,
            oom_kills: Some(1),
        };
        let status = Status {
            version: "1.0".into(),
            node: Node {
                hostname: "h".into(),
                fqdn: "h.d".into(),
                role: "worker".into(),
            },
            resources: serde_json::Value::Null,
            sizing: serde_json::Value::Null,
            services: vec![svc],
            agent: Agent {
                pid: 1,
                rss_bytes: 1234,
                zombies_reaped: 7,
                started_at: 5,
                oom_kills_total: Some(2),
                last_reload: None,
            },
        };
        let text = render(&status);
        let label = r#"{service="we\"ird\nname"}"#;
        for line in [
            format!("sparkvisor_service_up{label} 0"),
            format!("sparkvisor_service_ready{label} 0"),
            format!("sparkvisor_service_restarts_total{label} 4"),
            format!("sparkvisor_service_last_exit_code{label} 137"),
            format!("sparkvisor_service_oom_kills_total{label} 1"),
            "sparkvisor_agent_resident_memory_bytes 1234".to_string(),
            "sparkvisor_zombies_reaped_total 7".to_string(),
            "sparkvisor_cgroup_oom_kills_total 2".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains("sparkvisor_service_uptime_seconds{"));
        // Every sample line is `name{labels} value` or `name value`, every family has HELP and TYPE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{l}");
            assert!(l.rsplit(' ').next().unwrap().parse::<f64>().is_ok(), "{l}");
        }
    }
}
