//! The directories the access add-ons need, made by the agent before their services start (`run`
//! only). A failure is logged and the service then reports its own error: access is not critical.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::config::role::LoadedRole;
use crate::config::ResolvedConfig;

/// sshd's privilege-separation directory (Debian's path; sshd chroots its network child there).
pub const PRIVSEP_DIR: &str = "/run/sshd";
/// nslcd's socket and pid file directory (compiled into Debian's nslcd and its NSS/PAM modules).
pub const NSLCD_DIR: &str = "/run/nslcd";

/// Makes the host key directory (owned by the agent, which is sshd's user: host keys are read by
/// sshd before any privilege change, and a root sshd holds no DAC_OVERRIDE), sshd's privilege
/// separation directory (root agent), the LDAP users' home base, and nslcd's run directory:
/// root's, group `nslcd`, 0775, because nslcd writes its pid file as root (without DAC_OVERRIDE)
/// and its socket after switching to user `nslcd`.
pub fn prepare(role: &LoadedRole, config: &ResolvedConfig) {
    let uid = crate::sys::peercred::effective_uid();
    let setting = |key: &str| config.settings.get(key).map(|v| v.value.clone());
    if role.def.services.contains_key(super::SSHD_SERVICE) {
        if let Some(dir) = setting("ssh.host_key_dir") {
            report(&dir, owned_dir(Path::new(&dir), 0o700, uid, true));
        }
        if uid == 0 {
            report(
                PRIVSEP_DIR,
                owned_dir(Path::new(PRIVSEP_DIR), 0o755, 0, false),
            );
        }
    }
    if role.def.services.contains_key(super::NSLCD_SERVICE) {
        if let Some(dir) = setting("ldap.home_base") {
            report(&dir, owned_dir(Path::new(&dir), 0o755, 0, false));
        }
        let users = crate::sys::users::UserDb::system();
        match users.group_by_name("nslcd") {
            Some(group) => report(NSLCD_DIR, group_dir(Path::new(NSLCD_DIR), group.gid)),
            None => log::error!("access: no group nslcd on this system: nslcd cannot start"),
        }
    }
}

fn report(what: &str, result: io::Result<()>) {
    if let Err(e) = result {
        log::error!("access: cannot prepare {what}: {e}");
    }
}

/// `dir` exists, owned by root and group `gid`, mode 0775.
fn group_dir(dir: &Path, gid: u32) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o775)
        .create(dir)?;
    std::os::unix::fs::chown(dir, Some(0), Some(gid))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o775))
}

/// `dir` exists with `mode`, owned by `uid` (and, with `files`, so are the files directly in it:
/// keys a non-root run generated stay readable when the container later runs as root).
fn owned_dir(dir: &Path, mode: u32, uid: u32, files: bool) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    let gid = fs::metadata(dir)?.gid();
    let chown = |p: &Path| -> io::Result<()> {
        let meta = fs::symlink_metadata(p)?;
        if meta.uid() != uid && !meta.file_type().is_symlink() {
            std::os::unix::fs::chown(p, Some(uid), Some(if uid == 0 { 0 } else { gid }))?;
        }
        Ok(())
    };
    chown(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    if files {
        for entry in fs::read_dir(dir)? {
            chown(&entry?.path())?;
        }
    }
    Ok(())
}
