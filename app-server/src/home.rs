//! Where the daemon keeps its files (placeholder until the credentials work merges).
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Home {
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Home {
    pub fn at(dir: impl Into<PathBuf>) -> Home {
        let dir = dir.into();
        Home {
            config_dir: dir.clone(),
            state_dir: dir,
        }
    }
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
}

impl Home {
    pub fn from_env() -> Result<Home, std::io::Error> {
        if let Some(dir) = std::env::var_os("MCP_APP_SERVER_HOME") {
            return Ok(Home::at(PathBuf::from(dir)));
        }
        let config = dirs::config_dir().ok_or_else(|| std::io::Error::other("no config dir"))?;
        let state = dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .ok_or_else(|| std::io::Error::other("no state dir"))?;
        Ok(Home {
            config_dir: config.join("mcp-app-server"),
            state_dir: state.join("mcp-app-server"),
        })
    }
}
