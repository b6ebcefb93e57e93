//! Where Spark's conf dir is: the user's own (`SPARK_CONF_DIR`, else `SPARK_HOME/conf`), or, when
//! the agent cannot write its files there, an overlay under the scratch directory that Spark is
//! pointed at instead (`spark.conf_dir`), holding the merged files and a link to every other entry
//! of the user's dir (and of `conf.default`).
//!
//! The agent cannot write in place when the dir is read-only (a read-only root filesystem, a
//! Kubernetes ConfigMap) or when a file it merges is a mount point: a file the user bind-mounts is
//! read, never written (the host's file stays as the user wrote it, read-only or not).
//!
//! `conf.default` (`SPARK_HOME/conf.default`) is bitnami's seed: files there that the conf dir
//! lacks are copied in without overwriting anything (`cp -n`), or linked into the overlay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfError;
use crate::render::Format;

/// Where the user's conf files are and where Spark reads its conf.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Placement {
    /// The conf dir Spark reads (`spark.conf_dir`): the user's, or the overlay.
    pub dir: PathBuf,
    /// The user's conf dir.
    pub user_dir: PathBuf,
    /// `SPARK_HOME/conf.default`, when it is a directory.
    pub defaults_dir: Option<PathBuf>,
    /// Why the conf is written to an overlay (None: in place).
    pub overlay: Option<String>,
}

impl Placement {
    /// The user's file `name`: in the user's conf dir, else in `conf.default`.
    pub fn user_file(&self, name: &str) -> Option<PathBuf> {
        let own = self.user_dir.join(name);
        if own.is_file() {
            return Some(own);
        }
        self.defaults_dir
            .as_ref()
            .map(|d| d.join(name))
            .filter(|p| p.is_file())
    }
}

/// A link the overlay needs: `path` (in the overlay) → `target` (the user's entry).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// The link.
    pub path: PathBuf,
    /// What it points to.
    pub target: PathBuf,
}

/// An entry of `conf.default` to copy into the user's conf dir (it has none of that name).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Seed {
    /// The entry in `conf.default`.
    pub from: PathBuf,
    /// Where it goes.
    pub to: PathBuf,
}

/// The formats whose files the agent merges with the user's.
pub fn mergeable(path: &Path) -> bool {
    matches!(
        Format::for_name(&path.to_string_lossy()),
        Format::Properties | Format::Shell | Format::Xml
    )
}

/// Decides where the conf goes, from the user's conf dir `user_dir`, the Spark home, the files the
/// role renders (`destinations`), the mount points and the scratch directory (`scratch`, the
/// directories tried for the message).
pub fn place(
    user_dir: &Path,
    spark_home: &Path,
    destinations: &[PathBuf],
    mounts: &[PathBuf],
    scratch: (Option<PathBuf>, Vec<PathBuf>),
) -> Result<Placement, ConfError> {
    let defaults_dir = Some(spark_home.join("conf.default")).filter(|d| d.is_dir());
    let merged_here: Vec<&PathBuf> = destinations
        .iter()
        .filter(|d| d.parent() == Some(user_dir) && mergeable(d))
        .collect();
    let mounted = merged_here
        .iter()
        .find(|d| crate::render::write::is_mount_point(d, mounts));
    let overlay = if merged_here.is_empty() {
        None
    } else if !crate::startup::writable::is_writable(user_dir) {
        Some(format!("{} is not writable", user_dir.display()))
    } else if let Some(home) = shared_home(user_dir, spark_home, mounts) {
        Some(format!(
            "{} is a volume other containers may share (one node's rendered files, its host \
             name and sizing, would become another's)",
            home.display()
        ))
    } else {
        mounted.map(|m| {
            format!(
                "{} is mounted (a file you mount is read, never written)",
                m.display()
            )
        })
    };
    let Some(why) = overlay else {
        return Ok(Placement {
            dir: user_dir.to_path_buf(),
            user_dir: user_dir.to_path_buf(),
            defaults_dir,
            overlay: None,
        });
    };
    let (found, tried) = scratch;
    let Some(scratch) = found else {
        return Err(ConfError::NowhereToWrite {
            conf: user_dir.to_path_buf(),
            why,
            tried,
        });
    };
    let mut dir = scratch.join("spark").join("conf");
    if dir == user_dir {
        dir = scratch.join("spark").join("conf.sparkvisor");
    }
    Ok(Placement {
        dir,
        user_dir: user_dir.to_path_buf(),
        defaults_dir,
        overlay: Some(why),
    })
}

/// The Spark home, when it is a mount point (a volume over the whole home, which Docker seeds from
/// the image and several containers may share) and the user's conf dir lies in it. Links are
/// resolved first: `/opt/bitnami/spark` is `/opt/spark`, and mountinfo names the real path.
fn shared_home(user_dir: &Path, spark_home: &Path, mounts: &[PathBuf]) -> Option<PathBuf> {
    let home = std::fs::canonicalize(spark_home).ok()?;
    let conf = std::fs::canonicalize(user_dir).unwrap_or_else(|_| user_dir.to_path_buf());
    (mounts.contains(&home) && conf.starts_with(&home)).then_some(home)
}

/// The names of the entries of `dir` (none when it cannot be read).
fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The links an overlay needs (every entry of the user's dir, then of `conf.default`, that the
/// agent does not write itself; `written` are the first path components the agent writes under
/// the overlay), or the `conf.default` entries to copy into the user's own dir.
pub fn links_and_seeds(placement: &Placement, written: &[String]) -> (Vec<Link>, Vec<Seed>) {
    let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    let own = entry_names(&placement.user_dir);
    if let Some(defaults) = &placement.defaults_dir {
        for name in entry_names(defaults) {
            if !own.contains(&name) {
                sources.insert(name.clone(), defaults.join(name));
            }
        }
    }
    // The agent's own passing files (writability probes, staged writes) are nobody's conf.
    let is_probe = |n: &str| n.starts_with('.') && n.contains(".sparkvisor-");
    if placement.overlay.is_none() {
        let seeds = sources
            .into_iter()
            .filter(|(name, _)| !written.contains(name) && !is_probe(name))
            .map(|(name, from)| Seed {
                to: placement.user_dir.join(&name),
                from,
            })
            .collect();
        return (Vec::new(), seeds);
    }
    for name in own {
        let path = placement.user_dir.join(&name);
        sources.insert(name, path);
    }
    let links = sources
        .into_iter()
        .filter(|(name, _)| !written.contains(name) && !is_probe(name))
        .map(|(name, target)| Link {
            path: placement.dir.join(name),
            target,
        })
        .collect();
    (links, Vec::new())
}

/// Copies the seeds (recursively, never over anything) and makes the overlay's links (replacing
/// links and files of an earlier start, removing links no longer wanted). Returns what could not
/// be done, for the log: Spark then lacks that entry, nothing of the user's is touched.
pub fn apply(placement: &Placement, links: &[Link], seeds: &[Seed]) -> Vec<String> {
    let mut problems = Vec::new();
    for seed in seeds {
        if let Err(e) = copy_new(&seed.from, &seed.to) {
            problems.push(format!(
                "cannot copy {} to {}: {e}",
                seed.from.display(),
                seed.to.display()
            ));
        }
    }
    if placement.overlay.is_none() {
        return problems;
    }
    if let Err(e) = std::fs::create_dir_all(&placement.dir) {
        problems.push(format!("cannot create {}: {e}", placement.dir.display()));
        return problems;
    }
    // Links of an earlier start that are no longer wanted (an entry the user removed).
    for name in entry_names(&placement.dir) {
        let path = placement.dir.join(&name);
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && !links.iter().any(|l| l.path == path) {
            let _ = std::fs::remove_file(&path);
        }
    }
    for link in links {
        if std::fs::read_link(&link.path).is_ok_and(|t| t == link.target) {
            continue;
        }
        match std::fs::symlink_metadata(&link.path) {
            Ok(m) if m.is_dir() => {
                problems.push(format!(
                    "{} is a directory: not replaced by a link to {}",
                    link.path.display(),
                    link.target.display()
                ));
                continue;
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&link.path);
            }
            Err(_) => {}
        }
        if let Err(e) = std::os::unix::fs::symlink(&link.target, &link.path) {
            problems.push(format!(
                "cannot link {} to {}: {e}",
                link.path.display(),
                link.target.display()
            ));
        }
    }
    problems
}

/// `cp -rn from to`: a file is copied when `to` does not exist; a directory's entries likewise.
fn copy_new(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(from)?;
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_new(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if std::fs::symlink_metadata(to).is_ok() {
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("spark");
        let conf = home.join("conf");
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        (tmp, home, conf, scratch)
    }

    #[test]
    fn in_place_when_writable_and_nothing_is_mounted() {
        let (_t, home, conf, scratch) = dirs();
        let dests = [
            conf.join("spark-defaults.conf"),
            conf.join("jupyter/k.json"),
        ];
        let p = place(&conf, &home, &dests, &[], (Some(scratch), vec![])).unwrap();
        assert_eq!((p.dir.clone(), p.overlay.clone()), (conf.clone(), None));
        assert_eq!(p.defaults_dir, None);
    }

    #[test]
    fn a_mounted_file_moves_the_conf_to_an_overlay_linking_the_rest() {
        let (_t, home, conf, scratch) = dirs();
        std::fs::write(conf.join("spark-defaults.conf"), "a 1\n").unwrap();
        std::fs::write(conf.join("hive-site.xml"), "<configuration/>").unwrap();
        std::fs::create_dir_all(home.join("conf.default")).unwrap();
        std::fs::write(home.join("conf.default/metrics.properties"), "x=1\n").unwrap();
        std::fs::write(home.join("conf.default/hive-site.xml"), "<configuration/>").unwrap();
        let dests = [conf.join("spark-defaults.conf"), conf.join("spark-env.sh")];
        let mounts = [conf.join("spark-defaults.conf")];
        let p = place(
            &conf,
            &home,
            &dests,
            &mounts,
            (Some(scratch.clone()), vec![]),
        )
        .unwrap();
        assert_eq!(p.dir, scratch.join("spark/conf"));
        assert!(
            p.overlay.as_deref().unwrap().contains("is mounted"),
            "{p:?}"
        );
        let written = [
            "spark-defaults.conf".to_string(),
            "spark-env.sh".to_string(),
        ];
        let (links, seeds) = links_and_seeds(&p, &written);
        assert!(seeds.is_empty());
        let pairs: Vec<_> = links
            .iter()
            .map(|l| (l.path.file_name().unwrap().to_owned(), l.target.clone()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("hive-site.xml".into(), conf.join("hive-site.xml")),
                (
                    "metrics.properties".into(),
                    home.join("conf.default/metrics.properties")
                ),
            ]
        );
        assert!(apply(&p, &links, &seeds).is_empty());
        assert_eq!(
            std::fs::read_to_string(p.dir.join("metrics.properties")).unwrap(),
            "x=1\n"
        );
        // A later start without the defaults entry removes its link.
        assert!(apply(&p, links.get(..1).unwrap(), &[]).is_empty());
        assert!(!p.dir.join("metrics.properties").exists());
        assert!(p.dir.join("hive-site.xml").exists());
    }

    #[test]
    fn conf_default_seeds_what_the_conf_dir_lacks_without_overwriting() {
        let (_t, home, conf, scratch) = dirs();
        let defaults = home.join("conf.default");
        std::fs::create_dir_all(defaults.join("certs")).unwrap();
        std::fs::write(defaults.join("certs/ca.pem"), "pem").unwrap();
        std::fs::write(defaults.join("fairscheduler.xml"), "seed").unwrap();
        std::fs::write(defaults.join("spark-defaults.conf"), "seed 1\n").unwrap();
        std::fs::write(conf.join("fairscheduler.xml"), "mine").unwrap();
        let dests = [conf.join("spark-defaults.conf")];
        let p = place(&conf, &home, &dests, &[], (Some(scratch), vec![])).unwrap();
        assert_eq!(
            p.user_file("spark-defaults.conf"),
            Some(defaults.join("spark-defaults.conf"))
        );
        let (links, seeds) = links_and_seeds(&p, &["spark-defaults.conf".to_string()]);
        assert!(links.is_empty());
        assert_eq!(seeds.len(), 1, "{seeds:?}");
        assert!(apply(&p, &links, &seeds).is_empty());
        assert_eq!(
            std::fs::read_to_string(conf.join("certs/ca.pem")).unwrap(),
            "pem"
        );
        assert_eq!(
            std::fs::read_to_string(conf.join("fairscheduler.xml")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn a_spark_home_volume_keeps_each_nodes_files_in_its_own_overlay() {
        let (_t, home, conf, scratch) = dirs();
        std::fs::write(conf.join("hive-site.xml"), "<configuration/>").unwrap();
        let dests = [conf.join("spark-env.sh"), conf.join("spark-defaults.conf")];
        let mounts = [std::fs::canonicalize(&home).unwrap()];
        let p = place(
            &conf,
            &home,
            &dests,
            &mounts,
            (Some(scratch.clone()), vec![]),
        )
        .unwrap();
        assert_eq!(p.dir, scratch.join("spark/conf"));
        assert!(
            p.overlay
                .as_deref()
                .unwrap()
                .contains("is a volume other containers may share"),
            "{p:?}"
        );
        // What the user put in the shared conf dir stays in effect, through a link.
        let (links, _) = links_and_seeds(&p, &["spark-env.sh".to_string()]);
        assert_eq!(
            links,
            [Link {
                path: scratch.join("spark/conf/hive-site.xml"),
                target: conf.join("hive-site.xml"),
            }]
        );
        // A conf dir outside the home volume (SPARK_CONF_DIR elsewhere) is written in place.
        let own = scratch.join("own-conf");
        std::fs::create_dir_all(&own).unwrap();
        let p = place(
            &own,
            &home,
            &[own.join("spark-env.sh")],
            &mounts,
            (Some(scratch), vec![]),
        )
        .unwrap();
        assert_eq!(p.overlay, None);
    }

    #[test]
    fn no_scratch_for_an_overlay_is_an_error_naming_everything() {
        let (_t, home, conf, _) = dirs();
        let dests = [conf.join("spark-defaults.conf")];
        let mounts = dests.clone();
        let err = place(&conf, &home, &dests, &mounts, (None, vec!["/tmp".into()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is mounted") && err.contains("/tmp"), "{err}");
    }
}
