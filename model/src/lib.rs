//! # alkaid-model: the pure control-plane brain of Alkaid
//!
//! No I/O, no async, no clocks, no unseeded randomness: every function is value in, value
//! out, and [`ClusterState::apply`] is deterministic, so every operator replica that applies
//! the same Raft log holds the same state and computes the same per-droplet tables.
//!
//! ## Layout and data flow
//!
//! | module | role |
//! |---|---|
//! | [`types`] | validated newtypes: [`Vni`], [`DropletName`], [`MacAddr`], [`Ipv4Cidr`], [`EndpointKey`] |
//! | [`resource`] | the CR kinds (`Vpc`, `Subnet`, `Bouncer`, `Divider`, `Droplet`, `Endpoint`) in Kubernetes shape; [`Resource`] reads any of them |
//! | [`validate`] | name, CIDR, count, containment, gateway and overlap rules |
//! | [`vni`] | VNI allocation |
//! | [`ipam`] | per-subnet address allocation |
//! | [`placement`] | rendezvous hashing with a load bound for bouncers and dividers |
//! | [`table`] | rows, per-droplet [`Table`]s and versioned [`Delta`]s |
//! | [`state`] | [`ClusterState`], [`Command`], [`Outcome`]: apply, get/list, snapshot/restore |
//! | [`fwd`] | walks a packet through the tables like the XDP programs do |
//! | [`error`] | the crate's [`Error`] |
//!
//! A [`Command`] (from the Raft log) enters [`ClusterState::apply`], which validates it with
//! [`validate`], allocates with [`vni`] and [`ipam`], places roles with [`placement`], then
//! recomputes only the table rows the command touched and returns them as [`Delta`]s with
//! the status changes. [`ClusterState::desired_tables`] derives the same tables from scratch.

#![forbid(unsafe_code)]

pub mod error;
pub mod fwd;
pub mod ipam;
pub mod placement;
pub mod resource;
pub mod state;
pub mod table;
pub mod types;
pub mod validate;
pub mod vni;

pub use error::{Error, Result};
pub use resource::Resource;
pub use state::{ClusterState, Command, EndpointAllocation, ObjRef, Outcome, Reply, StatusChange};
pub use table::{Delta, RowKey, RowValue, Table};
pub use types::{DropletName, EndpointKey, Ipv4Cidr, MacAddr, Vni};
