//! Where the catalogue lives when neither `--db` nor `SKILLSMITH_DB` says:
//! `~/.skillsmith/skills.db`, the file the upstream Skillsmith tools keep,
//! so that an existing user's catalogue is the one kept current.
//!
//! Earlier versions of this project kept theirs in the platform data
//! directory (`~/.local/share/skillsmith/skills.db` on Linux). Such a file
//! is never silently abandoned: while the new default does not exist it is
//! used, with a notice saying how to move it; once both exist, the notice
//! says the old one is no longer read.

use std::path::{Path, PathBuf};

/// The default catalogue and what the user should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultCatalogue {
    /// The file to use.
    pub path: PathBuf,
    /// A catalogue at the previous default path, and what is done with it.
    pub notice: Option<String>,
}

/// The default catalogue for the current user's home directory; `None`
/// without one.
pub fn default_catalogue() -> Option<DefaultCatalogue> {
    let home = directories::BaseDirs::new()?.home_dir().to_owned();
    let previous = directories::ProjectDirs::from("app", "skillsmith", "skillsmith")
        .map(|d| d.data_dir().join("skills.db"));
    Some(choose(&home, previous.as_deref()))
}

/// The upstream tools' default under `home`.
pub fn shared_path(home: &Path) -> PathBuf {
    home.join(".skillsmith").join("skills.db")
}

fn choose(home: &Path, previous: Option<&Path>) -> DefaultCatalogue {
    let shared = shared_path(home);
    let Some(previous) = previous.filter(|p| p.is_file() && *p != shared) else {
        return DefaultCatalogue {
            path: shared,
            notice: None,
        };
    };
    if shared.exists() {
        let notice = format!(
            "{} holds a catalogue of an earlier skillsmith, which is no longer read now that {} \
             exists: pass --db {} to use it",
            previous.display(),
            shared.display(),
            previous.display()
        );
        return DefaultCatalogue {
            path: shared,
            notice: Some(notice),
        };
    }
    // The glob takes the `-wal` and `-shm` files along: after a crash the
    // `-wal` holds committed pages.
    let notice = format!(
        "using the catalogue at {}, where earlier versions of skillsmith kept it. The default \
         is now {}, which the upstream Skillsmith tools share: to switch, stop every skillsmith \
         process and move it there (`mkdir -p {dir} && mv {}* {dir}/`)",
        previous.display(),
        shared.display(),
        previous.display(),
        dir = shared.parent().unwrap_or(home).display(),
    );
    DefaultCatalogue {
        path: previous.to_owned(),
        notice: Some(notice),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_path_unless_only_the_previous_one_exists() {
        let home = tempfile::tempdir().unwrap();
        let previous = home.path().join("data/skillsmith/skills.db");
        let shared = shared_path(home.path());

        // Neither: the shared path, to be created.
        let c = choose(home.path(), Some(&previous));
        assert_eq!((c.path.as_path(), c.notice), (shared.as_path(), None));

        // Only the previous one: used, and the notice says how to move it.
        std::fs::create_dir_all(previous.parent().unwrap()).unwrap();
        std::fs::write(&previous, b"").unwrap();
        let c = choose(home.path(), Some(&previous));
        assert_eq!(c.path, previous);
        assert!(
            c.notice
                .unwrap()
                .contains(&format!("mv {}* ", previous.display()))
        );

        // Both: the shared one, and the notice names the other.
        std::fs::create_dir_all(shared.parent().unwrap()).unwrap();
        std::fs::write(&shared, b"").unwrap();
        let c = choose(home.path(), Some(&previous));
        assert_eq!(c.path, shared);
        assert!(c.notice.unwrap().contains(&previous.display().to_string()));
    }
}
