//! Named network namespaces (`ip netns add|del` semantics, without `ip`): a namespace is kept
//! alive by bind-mounting its nsfs file onto `/var/run/netns/NAME`. Used by tests and by the
//! lab to make pod namespaces; the agent itself only enters namespaces it is given.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys;

/// Where named namespaces live, as with iproute2.
pub const NETNS_RUN_DIR: &str = "/var/run/netns";

/// The path of the named namespace `name`.
pub fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Creates the named namespace `name` and returns its path.
///
/// # Errors
/// [`Error::Netns`] if it exists already or cannot be made (not root).
pub fn create(name: &str) -> Result<PathBuf> {
    let path = path_of(name);
    let err = |op: &'static str| {
        let path = path.clone();
        move |source| Error::Netns { path, op, source }
    };
    std::fs::create_dir_all(NETNS_RUN_DIR).map_err(err("create run dir"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(err("create mount point"))?;
    let target = path.clone();
    // A throwaway thread enters the new namespace, pins it with the bind mount, and exits.
    let made = std::thread::spawn(move || -> std::io::Result<()> {
        sys::unshare_net()?;
        sys::bind_mount(Path::new("/proc/thread-self/ns/net"), &target)
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&path);
        return Err(err("unshare and bind")(e));
    }
    Ok(path)
}

/// Deletes the named namespace `name`; `Ok(false)` if it did not exist. Interfaces inside
/// it go away with its last reference.
///
/// # Errors
/// [`Error::Netns`] if the mount or file cannot be removed.
pub fn delete(name: &str) -> Result<bool> {
    let path = path_of(name);
    if !path.exists() {
        return Ok(false);
    }
    match sys::umount_detach(&path) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(source) => {
            return Err(Error::Netns {
                path,
                op: "unmount",
                source,
            });
        }
    }
    std::fs::remove_file(&path).map_err(|source| Error::Netns {
        path,
        op: "remove",
        source,
    })?;
    Ok(true)
}

/// A named namespace deleted on drop (also on panic): for tests and the lab.
#[derive(Debug)]
pub struct NamedNetns {
    name: String,
    path: PathBuf,
}

impl NamedNetns {
    /// Creates `name`.
    ///
    /// # Errors
    /// As [`create`].
    pub fn create(name: &str) -> Result<Self> {
        Ok(Self {
            name: name.to_string(),
            path: create(name)?,
        })
    }

    /// Its path (`/var/run/netns/NAME`), what CNI_NETNS carries.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = delete(&self.name);
    }
}
