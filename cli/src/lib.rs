//! # alkaid-cli: the `alkaid` command
//!
//! | module | role |
//! |---|---|
//! | [`config`] | the one clap [`config::Config`]: global flags, commands |
//! | [`client`] | finding an operator (`--server`, `ALKAID_SERVER`, the lab's state) and mTLS |
//! | [`kind`] | resource kinds and their aliases |
//! | [`pb`] | manifests -> `alkaid.v1` messages -> Kubernetes-shaped JSON |
//! | [`apply`] | `apply -f`, `delete -f`, `delete KIND NAME` |
//! | [`get`] | `get` (tables, `-o wide|json|yaml`) and `describe` |
//! | [`output`] | formats and the column printer |
//! | [`lab`] | `alkaid lab`: a real multi-droplet cluster in network namespaces |
//! | [`error`] | the crate's [`Error`] |
//!
//! Data flow: a command resolves a [`client::Target`], reads manifests with
//! `alkaid-model` ([`apply::parse`]), sends them with [`pb::to_pb`], and prints answers
//! through [`pb::to_json`] and [`output`]. The lab keeps everything it makes in a state file
//! ([`lab::State`]) and names every object so `lab down` can also find it by scanning.

#![forbid(unsafe_code)]

pub mod apply;
pub mod client;
pub mod config;
pub mod error;
pub mod get;
pub mod kind;
pub mod lab;
pub mod output;
pub mod pb;

pub use error::{Error, Result};
