//! The end-of-run check: once every event has drained, every live agent's maps and the
//! model's incrementally kept tables must both equal the tables the model derives from
//! scratch from its objects (`ClusterState::desired_tables`).

use super::Sim;
use crate::bytes::RowCounts;

/// Droplets named in a failed verification, at most.
const SHOW: usize = 10;

impl Sim<'_> {
    pub(super) fn verify(&mut self) {
        let mut desired = self.w.state.desired_tables();
        let v = &mut self.m.verification;
        v.agent_tables_match = true;
        v.model_tables_match = true;
        v.version_gaps = self.m.version_gaps;
        self.m.final_rows = Vec::with_capacity(self.agents.len());
        for (name, agent) in self.w.droplets.iter().zip(&self.agents) {
            let want = desired.remove(name).unwrap_or_default();
            let model = self.w.state.table(name.as_str());
            self.m
                .final_rows
                .push(model.map(RowCounts::of).unwrap_or_default());
            if !agent.up {
                v.droplets_down += 1;
                continue;
            }
            v.droplets_checked += 1;
            let model_ok = model.is_some_and(|t| *t == want);
            let agent_ok = agent.table == want;
            v.model_tables_match &= model_ok;
            v.agent_tables_match &= agent_ok;
            if !(model_ok && agent_ok) && v.mismatched.len() < SHOW {
                v.mismatched.push(name.to_string());
            }
        }
    }
}
