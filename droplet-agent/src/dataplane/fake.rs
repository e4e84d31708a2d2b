//! An in-memory [`Dataplane`]: the maps as ordered maps, with injectable failures.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Counters, Dataplane, EndpointAttachment};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    endpoints: BTreeMap<String, EndpointAttachment>,
    counters: Counters,
}

/// The fake data plane.
#[derive(Debug, Default)]
pub struct FakeDataplane {
    state: Mutex<State>,
}

impl FakeDataplane {
    /// An empty data plane.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut st)
    }
}

impl Dataplane for FakeDataplane {
    fn attach_endpoint(&self, ep: &EndpointAttachment) -> Result<()> {
        if ep.host_ifindex == 0 {
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
