//! Fault injection: `lab droplet stop|start` (agent killed and the droplet's underlay link
//! down, as if the host lost power and its cable; start brings both back) and
//! `lab operator stop|start` (the replica's process killed with SIGKILL, then restarted on
//! the same data directory and addresses).

use super::{Lab, net, sys, up};
use crate::config::Action;
use crate::error::Result;

/// `lab droplet stop|start NAME`.
///
/// # Errors
/// Unknown droplet, netlink or process failures.
pub async fn droplet(lab: &Lab, action: Action, name: &str) -> Result<String> {
    super::require_root()?;
    let mut st = lab.state()?;
    let i = st
        .droplets
        .iter()
        .position(|d| d.name == name)
        .ok_or_else(|| st.droplet(name).err().unwrap_or(crate::Error::NoServer))?;
    let marker = lab.marker();
    let host = net::connect(None)?;
    let d = st.droplets[i].clone();
    match action {
        Action::Stop => {
            sys::kill_now(d.pid, &marker);
            net::set_up_by_name(&host, &d.host_veth, false).await?;
            st.droplets[i].pid = 0;
            st.droplets[i].stopped = true;
            st.save()?;
            Ok(format!(
                "droplet {name} stopped: agent killed, underlay link {} down",
                d.host_veth
            ))
        }
        Action::Restart => {
            sys::kill_now(d.pid, &marker);
            st.droplets[i].pid = up::spawn(&d.argv, Some(&d.netns_path), &d.log)?;
            st.droplets[i].stopped = false;
            st.save()?;
            Ok(format!(
                "agent of {name} restarted (pid {})",
                st.droplets[i].pid
            ))
        }
        Action::Start => {
            net::set_up_by_name(&host, &d.host_veth, true).await?;
            if !sys::alive(d.pid, &marker) {
                st.droplets[i].pid = up::spawn(&d.argv, Some(&d.netns_path), &d.log)?;
            }
            st.droplets[i].stopped = false;
            st.save()?;
            Ok(format!(
                "droplet {name} started: underlay link up, agent pid {}",
                st.droplets[i].pid
            ))
        }
    }
}

/// `lab operator stop|start ID`.
///
/// # Errors
/// Unknown replica or process failures.
pub async fn operator(lab: &Lab, action: Action, id: u64) -> Result<String> {
    super::require_root()?;
    let mut st = lab.state()?;
    let Some(i) = st.operators.iter().position(|o| o.id == id) else {
        return Err(crate::Error::Lab(format!(
            "no operator {id}: lab {} has replicas 1..={}",
            st.name,
            st.operators.len()
        )));
    };
    let marker = lab.marker();
    let o = st.operators[i].clone();
    match action {
        Action::Stop => {
            sys::kill_now(o.pid, &marker);
            st.operators[i].pid = 0;
            st.operators[i].stopped = true;
            st.save()?;
            Ok(format!("operator {id} stopped"))
        }
        Action::Start | Action::Restart => {
            if action == Action::Restart {
                sys::kill_now(o.pid, &marker);
            }
            if !sys::alive(o.pid, &marker) {
                st.operators[i].pid = up::spawn(&o.argv, None, &o.log)?;
            }
            st.operators[i].stopped = false;
            st.save()?;
            Ok(format!(
                "operator {id} started (pid {})",
                st.operators[i].pid
            ))
        }
    }
}
