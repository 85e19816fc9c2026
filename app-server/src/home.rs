//! Where mcp-app-server keeps its configuration and state.
//!
//! `$MCP_APP_SERVER_HOME` puts everything in one directory (tests and portable installs use
//! it); otherwise the XDG locations are used, so `config.toml` sits with other tools' config
//! and the credentials with other per-user state.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable that overrides both directories.
pub(crate) const HOME_ENV: &str = "MCP_APP_SERVER_HOME";

/// The directory name used under the XDG config and state directories.
const APP_DIR: &str = "mcp-app-server";

/// The configuration and state directories of one installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// Holds `config.toml`.
    pub(crate) config_dir: PathBuf,
    /// Holds the credential store and its lock files.
    pub state_dir: PathBuf,
}

/// Failure to locate or prepare the home directories.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HomeError {
    #[error(
        "could not determine the user's {which} directory; set {HOME_ENV} to a directory \
         where mcp-app-server may keep its configuration and credentials"
    )]
    NoUserDir { which: &'static str },
    #[error(
        "could not prepare the directory {path}: {source}; check that it is writable by this \
         user, or set {HOME_ENV} to another directory"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Home {
    /// `$MCP_APP_SERVER_HOME` set (and not empty) => both dirs are that dir. Else XDG:
    /// `config_dir = dirs::config_dir()/mcp-app-server`, `state_dir = dirs::state_dir()`
    /// (falling back to `dirs::data_local_dir()` where there is no state dir, as on macOS
    /// and Windows) `/mcp-app-server`.
    pub(crate) fn from_env() -> Result<Home, HomeError> {
        Self::resolve(
            std::env::var_os(HOME_ENV),
            dirs::config_dir(),
            dirs::state_dir().or_else(dirs::data_local_dir),
        )
    }

    /// Both directories are `dir` (tests, portable installs).
    pub fn at(dir: impl Into<PathBuf>) -> Home {
        let dir = dir.into();
        Home {
            config_dir: dir.clone(),
            state_dir: dir,
        }
    }

    /// `config_dir/config.toml`.
    pub(crate) fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// Creates the state directory (and missing parents) with mode 0700 on unix, and
    /// tightens an existing one that others could read: it holds tokens.
    pub(crate) fn ensure_state_dir(&self) -> Result<(), HomeError> {
        create_private_dir(&self.state_dir).map_err(|source| HomeError::Io {
            path: self.state_dir.clone(),
            source,
        })
    }

    /// The decision of [`Home::from_env`], with its inputs passed in so it can be tested
    /// without touching the process environment.
    fn resolve(
        env_home: Option<OsString>,
        config_base: Option<PathBuf>,
        state_base: Option<PathBuf>,
    ) -> Result<Home, HomeError> {
        if let Some(dir) = env_home.filter(|dir| !dir.is_empty()) {
            // Absolute, so a later change of working directory cannot move the home.
            let dir = PathBuf::from(dir);
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            return Ok(Home::at(dir));
        }
        let config_base = config_base.ok_or(HomeError::NoUserDir { which: "config" })?;
        let state_base = state_base.ok_or(HomeError::NoUserDir { which: "state" })?;
        Ok(Home {
            config_dir: config_base.join(APP_DIR),
            state_dir: state_base.join(APP_DIR),
        })
    }
}

/// Creates `dir` and its missing parents; on unix the result is mode 0700 whether it was
/// just created or already existed with wider permissions.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_home_sets_both_dirs() {
        let home = Home::resolve(
            Some(OsString::from("/srv/mcp")),
            Some(PathBuf::from("/home/u/.config")),
            Some(PathBuf::from("/home/u/.local/state")),
        )
        .unwrap();
        assert_eq!(home, Home::at("/srv/mcp"));
        assert_eq!(home.config_file(), PathBuf::from("/srv/mcp/config.toml"));
    }

    #[test]
    fn relative_env_home_becomes_absolute() {
        let home = Home::resolve(Some(OsString::from("rel/home")), None, None).unwrap();
        assert!(home.config_dir.is_absolute());
        assert!(home.config_dir.ends_with("rel/home"));
        assert_eq!(home.config_dir, home.state_dir);
    }

    #[test]
    fn xdg_dirs_when_env_unset_or_empty() {
        for env in [None, Some(OsString::new())] {
            let home = Home::resolve(
                env,
                Some(PathBuf::from("/home/u/.config")),
                Some(PathBuf::from("/home/u/.local/state")),
            )
            .unwrap();
            assert_eq!(
                home.config_dir,
                PathBuf::from("/home/u/.config/mcp-app-server")
            );
            assert_eq!(
                home.state_dir,
                PathBuf::from("/home/u/.local/state/mcp-app-server")
            );
            assert_eq!(
                home.config_file(),
                PathBuf::from("/home/u/.config/mcp-app-server/config.toml")
            );
        }
    }

    #[test]
    fn missing_user_dirs_name_the_override() {
        let err = Home::resolve(None, None, Some(PathBuf::from("/s"))).unwrap_err();
        assert!(matches!(err, HomeError::NoUserDir { which: "config" }));
        assert!(err.to_string().contains(HOME_ENV));
        let err = Home::resolve(None, Some(PathBuf::from("/c")), None).unwrap_err();
        assert!(matches!(err, HomeError::NoUserDir { which: "state" }));
    }

    #[cfg(unix)]
    #[test]
    fn state_dir_is_created_private_and_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path().join("a/b/home"));
        home.ensure_state_dir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&home.state_dir), 0o700);

        std::fs::set_permissions(&home.state_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        home.ensure_state_dir().unwrap();
        assert_eq!(mode(&home.state_dir), 0o700);
    }
}
