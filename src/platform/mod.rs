//! What each platform expects of a container's entrypoint: tini's command line, the official
//! `apache/spark` and `bitnami/spark` images' entrypoints, Spark-on-Kubernetes pods and their
//! preStop hook, KubeDirector's hooks and persisted volumes. Each module adapts one platform to the
//! start-up layer, which it shares the rank of (docs/architecture.md).

pub mod decommission;
pub mod dropin;
pub mod image_stamp;
pub mod k8s_pod;
pub mod kubedirector;
pub mod tini;
