//! Users and groups from `/etc/passwd` and `/etc/group`, resolved for a service or a file owner.
//!
//! Pure parsing: this module reads the two files it is given and makes no system call (no NSS, no
//! `getpwnam`), so a static binary behaves the same in every image and tests use fixture files.
//!
//! Resolution rules (docs/privileges.md):
//! - `user` is a name (`spark`), a uid (`185`) or `user:group` (`185:185`, `spark:hadoop`).
//! - A uid with no passwd entry works: its name is the uid as text, its home is `/`, its primary group
//!   is the gid of the same number (never the root group by accident) and it has no supplementary
//!   groups.
//! - A named user's supplementary groups are its primary group plus every group of `/etc/group` that
//!   lists it as a member (what `initgroups(3)` gives).
//! - `group` overrides the primary group; `groups` replaces the supplementary list exactly.

use std::fs;
use std::io;
use std::path::Path;

/// The default passwd file.
pub const PASSWD_PATH: &str = "/etc/passwd";
/// The default group file.
pub const GROUP_PATH: &str = "/etc/group";

/// The ids a process runs with, resolved from a service's `user`, `group` and `groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIds {
    /// Real, effective and saved uid.
    pub uid: u32,
    /// Real, effective and saved gid.
    pub gid: u32,
    /// Supplementary groups, in order, without duplicates.
    pub groups: Vec<u32>,
    /// The user's name (the uid as text when it has no passwd entry); for `USER` and `LOGNAME`.
    pub name: String,
    /// The user's home directory (`/` when it has no passwd entry); for `HOME`.
    pub home: String,
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Names of the users listed as members.
    pub members: Vec<String>,
}

/// The parsed contents of a passwd and a group file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDb {
    /// Users in file order.
    pub users: Vec<PasswdEntry>,
    /// Groups in file order.
    pub groups: Vec<GroupEntry>,
}

impl UserDb {
    /// Reads and parses both files. Malformed lines are skipped, as the C library does.
    /// The error names the file that could not be read.
    pub fn load(passwd: &Path, group: &Path) -> Result<Self, io::Error> {
        let read = |path: &Path| {
            fs::read_to_string(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        Ok(Self::parse(&read(passwd)?, &read(group)?))
    }

    /// The system's `/etc/passwd` and `/etc/group`; a missing or unreadable file counts as empty
    /// (minimal images may have neither; numeric ids still resolve).
    pub fn system() -> Self {
        let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
        Self::parse(&read(PASSWD_PATH), &read(GROUP_PATH))
    }

    /// Parses the text of a passwd and a group file.
    pub fn parse(passwd: &str, group: &str) -> Self {
        Self {
            users: passwd.lines().filter_map(parse_passwd_line).collect(),
            groups: group.lines().filter_map(parse_group_line).collect(),
        }
    }

    /// The first passwd entry with this name.
    pub fn user_by_name(&self, name: &str) -> Option<&PasswdEntry> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The first passwd entry with this uid.
    pub fn user_by_uid(&self, uid: u32) -> Option<&PasswdEntry> {
        self.users.iter().find(|u| u.uid == uid)
    }

    /// The first group entry with this name.
    pub fn group_by_name(&self, name: &str) -> Option<&GroupEntry> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// A group given as a name or a number, as a gid.
    pub fn resolve_group(&self, group: &str) -> Result<u32, UserError> {
        if let Some(gid) = parse_id(group) {
            return Ok(gid);
        }
        self.group_by_name(group)
            .map(|g| g.gid)
            .ok_or_else(|| UserError::UnknownGroups(vec![group.to_string()]))
    }

    /// The primary gid plus every group listing `name` as a member, without duplicates.
    fn member_groups(&self, name: &str, primary: u32) -> Vec<u32> {
        let mut groups = vec![primary];
        for g in &self.groups {
            if g.members.iter().any(|m| m == name) && !groups.contains(&g.gid) {
                groups.push(g.gid);
            }
        }
        groups
    }
}

/// Why a service's (or a rendered file's) `user`, `group` or `groups` cannot be used. Each message
/// is one lowercase sentence naming what is unknown; the caller adds the file and service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// `:gid` and the like.
    #[error("invalid user `{0}`: empty user name")]
    EmptyName(String),
    /// `user:group` together with `group:`.
    #[error("user `{0}` already names a primary group; do not also set `group`")]
    GroupGivenTwice(String),
    /// Neither a number nor a name in /etc/passwd.
    #[error("unknown user `{0}` (not a number and not in /etc/passwd)")]
    UnknownUser(String),
    /// Groups that are neither numbers nor names in /etc/group (at least one).
    #[error(
        "unknown group{} {} (not a number and not in /etc/group)",
        if .0.len() > 1 { "s" } else { "" },
        .0.iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(", ")
    )]
    UnknownGroups(Vec<String>),
    /// `group` or `groups` without `user`: the agent's own user is not known here.
    #[error("`group` and `groups` need `user` (name or uid) as well")]
    GroupsWithoutUser,
}

/// Resolves a service's `user` (name, `uid` or `user:group`), `group` (overrides the primary group)
/// and `groups` (replaces the supplementary groups; names or numbers). The error is one lowercase
/// sentence naming what is unknown.
pub fn resolve_user(
    user: &str,
    group: Option<&str>,
    groups: Option<&[String]>,
    db: &UserDb,
) -> Result<UserIds, UserError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if user_part.is_empty() {
        return Err(UserError::EmptyName(user.to_string()));
    }
    if group_part.is_some() && group.is_some() {
        return Err(UserError::GroupGivenTwice(user.to_string()));
    }

    let mut ids = match (db.user_by_name(user_part), parse_id(user_part)) {
        (Some(entry), _) => from_entry(entry, db),
        (None, Some(uid)) => match db.user_by_uid(uid) {
            Some(entry) => from_entry(entry, db),
            None => UserIds {
                uid,
                gid: uid,
                groups: Vec::new(),
                name: uid.to_string(),
                home: "/".to_string(),
            },
        },
        (None, None) => return Err(UserError::UnknownUser(user_part.to_string())),
    };

    if let Some(primary) = group_part.or(group) {
        let old = ids.gid;
        ids.gid = db.resolve_group(primary)?;
        // The implicit primary group follows the override; explicit memberships stay.
        if let Some(first) = ids.groups.first_mut() {
            if *first == old {
                *first = ids.gid;
            }
        }
        dedup_keep_order(&mut ids.groups);
    }

    if let Some(list) = groups {
        let mut resolved = Vec::with_capacity(list.len());
        let mut unknown = Vec::new();
        for g in list {
            match db.resolve_group(g) {
                Ok(gid) => resolved.push(gid),
                Err(_) => unknown.push(g.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(UserError::UnknownGroups(unknown));
        }
        dedup_keep_order(&mut resolved);
        ids.groups = resolved;
    }
    Ok(ids)
}

/// A service's `user`, `group` and `groups` as written in its role: `None` when it sets no user (it
/// keeps the agent's ids). `group` or `groups` without `user` is an error, because the agent's own
/// user is not known here.
pub fn resolve_service_user(
    user: Option<&str>,
    group: Option<&str>,
    groups: Option<&[String]>,
    db: &UserDb,
) -> Result<Option<UserIds>, UserError> {
    match user {
        Some(user) => resolve_user(user, group, groups, db).map(Some),
        None if group.is_some() || groups.is_some() => Err(UserError::GroupsWithoutUser),
        None => Ok(None),
    }
}

fn from_entry(entry: &PasswdEntry, db: &UserDb) -> UserIds {
    UserIds {
        uid: entry.uid,
        gid: entry.gid,
        groups: db.member_groups(&entry.name, entry.gid),
        name: entry.name.clone(),
        home: entry.home.clone(),
    }
}

fn dedup_keep_order(ids: &mut Vec<u32>) {
    let mut seen = Vec::with_capacity(ids.len());
    ids.retain(|id| {
        if seen.contains(id) {
            false
        } else {
            seen.push(*id);
            true
        }
    });
}

/// A decimal id (no sign, no spaces).
fn parse_id(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Lines that are empty, comments or NIS compat entries (`+`/`-`) carry no entry.
fn is_entry_line(line: &str) -> bool {
    !(line.trim().is_empty()
        || line.starts_with('#')
        || line.starts_with('+')
        || line.starts_with('-'))
}

/// `name:password:uid:gid:gecos:home:shell`
fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    if !is_entry_line(line) {
        return None;
    }
    let mut fields = line.split(':');
    let name = fields.next().filter(|n| !n.is_empty())?;
    let _password = fields.next()?;
    let uid = parse_id(fields.next()?)?;
    let gid = parse_id(fields.next()?)?;
    let _gecos = fields.next()?;
    let home = fields.next()?;
    Some(PasswdEntry {
        name: name.to_string(),
        uid,
        gid,
        home: if home.is_empty() { "/" } else { home }.to_string(),
    })
}

/// `name:password:gid:member,member`
fn parse_group_line(line: &str) -> Option<GroupEntry> {
    if !is_entry_line(line) {
        return None;
    }
    let mut fields = line.split(':');
    let name = fields.next().filter(|n| !n.is_empty())?;
    let _password = fields.next()?;
    let gid = parse_id(fields.next()?)?;
    let members = fields
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    Some(GroupEntry {
        name: name.to_string(),
        gid,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
spark:x:185:185:Spark:/opt/spark:/bin/bash
broken line without fields
badid:x:abc:1::/home/badid:/bin/sh
nohome:x:1001:1001:::/bin/sh
+nisuser::::::
";

    const GROUP: &str = "\
root:x:0:
spark:x:185:
hadoop:x:2000:spark,alice
docker:x:999:alice, spark
nogroup:x:65534:
users:x:100:
";

    fn db() -> UserDb {
        UserDb::parse(PASSWD, GROUP)
    }

    #[test]
    fn skips_comments_malformed_and_nis_lines() {
        let db = db();
        let names: Vec<_> = db.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["root", "nobody", "spark", "nohome"]);
        assert_eq!(db.groups.len(), 6);
        assert_eq!(
            db.group_by_name("docker").unwrap().members,
            ["alice", "spark"]
        );
    }

    #[test]
    fn named_user_gets_primary_and_member_groups() {
        let ids = resolve_user("spark", None, None, &db()).unwrap();
        assert_eq!(
            ids,
            UserIds {
                uid: 185,
                gid: 185,
                groups: vec![185, 2000, 999],
                name: "spark".into(),
                home: "/opt/spark".into(),
            }
        );
    }

    #[test]
    fn numeric_uid_with_entry_uses_the_entry() {
        let ids = resolve_user("185", None, None, &db()).unwrap();
        assert_eq!(ids.name, "spark");
        assert_eq!(ids.home, "/opt/spark");
        assert_eq!(ids.groups, [185, 2000, 999]);
    }

    #[test]
    fn uid_without_entry_gets_own_gid_name_and_root_home() {
        let ids = resolve_user("4242", None, None, &db()).unwrap();
        assert_eq!(
            ids,
            UserIds {
                uid: 4242,
                gid: 4242,
                groups: vec![],
                name: "4242".into(),
                home: "/".into(),
            }
        );
    }

    #[test]
    fn uid_colon_gid_and_group_names() {
        let ids = resolve_user("4242:0", None, None, &db()).unwrap();
        assert_eq!((ids.uid, ids.gid), (4242, 0));
        let ids = resolve_user("spark:hadoop", None, None, &db()).unwrap();
        assert_eq!((ids.uid, ids.gid), (185, 2000));
        // The implicit primary group follows the override; memberships stay, without duplicates.
        assert_eq!(ids.groups, [2000, 999]);
        let ids = resolve_user("4242:users", None, None, &db()).unwrap();
        assert_eq!(ids.gid, 100);
    }

    #[test]
    fn group_and_groups_overrides() {
        let ids = resolve_user("spark", Some("users"), None, &db()).unwrap();
        assert_eq!(ids.gid, 100);
        assert_eq!(ids.groups, [100, 2000, 999]);
        let groups = vec!["docker".to_string(), "7".to_string(), "docker".to_string()];
        let ids = resolve_user("nobody", Some("65534"), Some(&groups), &db()).unwrap();
        assert_eq!((ids.uid, ids.gid), (65534, 65534));
        assert_eq!(ids.groups, [999, 7]);
        let ids = resolve_user("spark", None, Some(&[]), &db()).unwrap();
        assert!(ids.groups.is_empty());
    }

    #[test]
    fn errors_name_what_is_unknown() {
        let err = resolve_user("ghost", None, None, &db())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown user `ghost`"), "{err}");
        let err = resolve_user("spark", Some("ghosts"), None, &db())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown group `ghosts`"), "{err}");
        let groups = vec!["a".to_string(), "hadoop".to_string(), "b".to_string()];
        let err = resolve_user("spark", None, Some(&groups), &db())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown groups `a`, `b`"), "{err}");
        let err = resolve_user("spark:hadoop", Some("users"), None, &db())
            .unwrap_err()
            .to_string();
        assert!(err.contains("already names a primary group"), "{err}");
        let err = resolve_user(":0", None, None, &db())
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty user name"), "{err}");
        assert!(resolve_user("-1", None, None, &db()).is_err());
        assert!(resolve_user("99999999999", None, None, &db()).is_err());
    }

    #[test]
    fn service_user_is_optional_but_groups_need_it() {
        assert_eq!(resolve_service_user(None, None, None, &db()), Ok(None));
        let ids = resolve_service_user(Some("spark"), None, None, &db()).unwrap();
        assert_eq!(ids.map(|i| i.uid), Some(185));
        let err = resolve_service_user(None, Some("users"), None, &db())
            .unwrap_err()
            .to_string();
        assert!(err.contains("need `user`"), "{err}");
        assert!(resolve_service_user(None, None, Some(&[]), &db()).is_err());
    }

    #[test]
    fn empty_home_becomes_root() {
        assert_eq!(db().user_by_name("nohome").unwrap().home, "/");
    }

    #[test]
    fn load_reads_files_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        let group = dir.path().join("group");
        fs::write(&passwd, PASSWD).unwrap();
        fs::write(&group, GROUP).unwrap();
        assert_eq!(UserDb::load(&passwd, &group).unwrap(), db());
        let missing = dir.path().join("missing");
        let err = UserDb::load(&passwd, &missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn system_db_knows_root() {
        // Every Debian-like system (and this test machine) has root in /etc/passwd.
        assert!(
            Path::new(PASSWD_PATH).exists(),
            "test machine has no {PASSWD_PATH}"
        );
        let db = UserDb::system();
        assert_eq!(db.user_by_name("root").map(|r| r.uid), Some(0));
    }
}
