//! Resolving the injected runtime config: role defaults < cluster file < configmeta.json < env <
//! `<NAME>_FILE` secrets, each value keeping its [`crate::config::Source`].
