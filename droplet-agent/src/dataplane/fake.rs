//! An in-memory [`Dataplane`]: the maps as ordered maps, with injectable failures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex};

use alkaid_model::{RowKey, Table};

use super::{ApplyReport, Counters, Dataplane, EndpointAttachment};
use crate::error::{Error, Result};
use crate::sync::MapOp;

#[derive(Debug, Default)]
struct State {
    rows: Table,
    failing: BTreeSet<RowKey>,
    fail_attach: bool,
    applies: u64,
    endpoints: BTreeMap<String, EndpointAttachment>,
    counters: Counters,
}

/// Holds back [`FakeDataplane`]'s applies while it lives.
#[derive(Debug)]
pub struct ApplyHold<'a>(&'a FakeDataplane);

impl Drop for ApplyHold<'_> {
    fn drop(&mut self) {
        *self.0.held.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.0.released.notify_all();
    }
}

/// The fake data plane.
#[derive(Debug, Default)]
pub struct FakeDataplane {
    state: Mutex<State>,
    /// True while an [`ApplyHold`] lives; every `apply` waits for it to be false.
    held: Mutex<bool>,
    released: Condvar,
}

impl FakeDataplane {
    /// An empty data plane.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every operation on `key` fail until [`FakeDataplane::heal`].
    pub fn fail_on(&self, key: RowKey) {
        self.with(|st| st.failing.insert(key));
    }

    /// Makes `attach_endpoint` fail until [`FakeDataplane::heal`].
    pub fn fail_attach(&self) {
        self.with(|st| st.fail_attach = true);
    }

    /// Stops injected failures.
    pub fn heal(&self) {
        self.with(|st| {
            st.failing.clear();
            st.fail_attach = false;
        });
    }

    /// Replaces the rows wholesale (what pinned maps held before a restart, say).
    pub fn set_rows(&self, rows: Table) {
        self.with(|st| st.rows = rows);
    }

    /// Makes every `apply` wait until the returned hold is dropped (to let messages queue up
    /// behind one being applied).
    pub fn hold_applies(&self) -> ApplyHold<'_> {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = true;
        ApplyHold(self)
    }

    fn wait_while_held(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        drop(
            self.released
                .wait_while(held, |held| *held)
                .unwrap_or_else(|p| p.into_inner()),
        );
    }

    /// How many `apply` calls were made.
    pub fn apply_calls(&self) -> u64 {
        self.with(|st| st.applies)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut st)
    }
}

impl Dataplane for FakeDataplane {
    fn apply(&self, ops: &[MapOp]) -> Result<ApplyReport> {
        self.wait_while_held();
        Ok(self.with(|st| {
            st.applies += 1;
            let mut report = ApplyReport::default();
            for op in ops {
                let key = match op {
                    MapOp::Upsert(k, _) | MapOp::Delete(k) => k,
                };
                if st.failing.contains(key) {
                    report.errors.push(format!("{key:?}: injected failure"));
                    continue;
                }
                match op {
                    MapOp::Upsert(k, v) => st.rows.insert(k.clone(), v.clone()),
                    MapOp::Delete(k) => st.rows.remove(k),
                };
                report.applied += 1;
            }
            report
        }))
    }

    fn rows(&self) -> Result<Table> {
        Ok(self.with(|st| st.rows.clone()))
    }

    fn attach_endpoint(&self, ep: &EndpointAttachment) -> Result<()> {
        if ep.host_ifindex == 0 || self.with(|st| st.fail_attach) {
            return Err(Error::Dataplane {
                op: "attach",
                message: format!("{} has no ifindex", ep.host_ifname),
            });
        }
        self.with(|st| {
            *st.counters.entry("attach".into()).or_default() += 1;
            st.endpoints.insert(ep.host_ifname.clone(), ep.clone());
        });
        Ok(())
    }

    fn detach_endpoint(&self, ep: &EndpointAttachment) -> Result<bool> {
        Ok(self.with(|st| st.endpoints.remove(&ep.host_ifname).is_some()))
    }

    fn endpoints(&self) -> Result<Vec<EndpointAttachment>> {
        Ok(self.with(|st| st.endpoints.values().cloned().collect()))
    }

    fn counters(&self) -> Result<Counters> {
        Ok(self.with(|st| st.counters.clone()))
    }
}
