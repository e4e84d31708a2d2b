//! Attachment records: one JSON file per container interface under the state directory,
//! written atomically (temp file + rename) so a crash leaves the old or the new record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cni::protocol::EndpointInfo;
use crate::dataplane::EndpointAttachment;
use crate::error::{Error, Result};

/// What ADD did, persisted for DEL and CHECK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// CNI_IFNAME.
    pub ifname: String,
    /// Endpoint namespace.
    pub namespace: String,
    /// Endpoint name.
    pub name: String,
    /// Host-side veth name.
    pub host_ifname: String,
    /// The finished endpoint, once the interface exists.
    #[serde(default)]
    pub info: Option<EndpointInfo>,
    /// The data-plane attachment, once made.
    #[serde(default)]
    pub attachment: Option<EndpointAttachment>,
}

/// The records of one agent.
#[derive(Clone, Debug)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// Records kept in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file of one container interface.
    pub fn path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{container_id}_{ifname}.json"))
    }

    /// Writes `r` atomically.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`].
    pub fn save(&self, r: &Record) -> Result<()> {
        let path = self.path(&r.container_id, &r.ifname);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io("create state dir", &self.dir, e))?;
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(r).map_err(|source| Error::Json {
            what: "record",
            source,
        })?;
        std::fs::write(&tmp, body).map_err(|e| Error::io("write record", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename record", &path, e))
    }

    /// Reads the record of a container interface, if any.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`].
    pub fn load(&self, container_id: &str, ifname: &str) -> Result<Option<Record>> {
        let path = self.path(container_id, ifname);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| Error::Json {
                    what: "record",
                    source,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read record", path, e)),
        }
    }

    /// Removes `r`'s file; absent is fine.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn remove(&self, r: &Record) -> Result<()> {
        let path = self.path(&r.container_id, &r.ifname);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove record", path, e)),
        }
    }

    /// Every readable record (unreadable files are skipped: DEL still cleans by name).
    pub fn all(&self) -> Vec<Record> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Record> = dir
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a: &Record, b: &Record| {
            (&a.container_id, &a.ifname).cmp(&(&b.container_id, &b.ifname))
        });
        out
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
