//! Counters of the Kubernetes side, rendered as Prometheus text for the operator's
//! `/metrics` (the operator binary owns the HTTP server).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct Counters {
    reconciles: BTreeMap<&'static str, u64>,
    errors: BTreeMap<(&'static str, &'static str), u64>,
    mirrored: BTreeMap<(&'static str, &'static str), u64>,
}

/// Reconcile, error and mirror counters, labelled by controller (and error or operation).
#[derive(Default)]
pub struct Metrics {
    // std Mutex: a few map updates, never held across an await.
    inner: Mutex<Counters>,
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Counters> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one reconcile of `controller`.
    pub fn reconciled(&self, controller: &'static str) {
        *self.lock().reconciles.entry(controller).or_default() += 1;
    }

    /// Counts one failure of `controller`, labelled by [`crate::Error::metric_label`].
    pub fn failed(&self, controller: &'static str, label: &'static str) {
        *self.lock().errors.entry((controller, label)).or_default() += 1;
    }

    /// Counts one mirror write (`apply` or `delete`) for `kind`.
    pub fn mirrored(&self, kind: &'static str, op: &'static str) {
        *self.lock().mirrored.entry((kind, op)).or_default() += 1;
    }

    /// Failures of `controller` with `label` so far.
    pub fn errors(&self, controller: &str, label: &str) -> u64 {
        self.lock()
            .errors
            .iter()
            .filter(|((c, l), _)| *c == controller && *l == label)
            .map(|(_, n)| n)
            .sum()
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let c = self.lock();
        let mut out = String::new();
        out.push_str("# HELP alkaid_k8s_reconciles_total Reconciles run, by controller.\n");
        out.push_str("# TYPE alkaid_k8s_reconciles_total counter\n");
        for (ctl, n) in &c.reconciles {
            let _ = writeln!(
                out,
                "alkaid_k8s_reconciles_total{{controller=\"{ctl}\"}} {n}"
            );
        }
        out.push_str("# HELP alkaid_k8s_reconcile_errors_total Failed reconciles, by controller and error.\n");
        out.push_str("# TYPE alkaid_k8s_reconcile_errors_total counter\n");
        for ((ctl, label), n) in &c.errors {
            let _ = writeln!(
                out,
                "alkaid_k8s_reconcile_errors_total{{controller=\"{ctl}\",error=\"{label}\"}} {n}"
            );
        }
        out.push_str("# HELP alkaid_k8s_mirror_writes_total Store-to-Kubernetes mirror writes.\n");
        out.push_str("# TYPE alkaid_k8s_mirror_writes_total counter\n");
        for ((kind, op), n) in &c.mirrored {
            let _ = writeln!(
                out,
                "alkaid_k8s_mirror_writes_total{{kind=\"{kind}\",op=\"{op}\"}} {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn renders_labelled_counters() {
        let m = Metrics::default();
        m.reconciled("Vpc");
        m.failed("Vpc", "kube");
        m.failed("Vpc", "kube");
        m.mirrored("Endpoint", "apply");
        let text = m.render();
        assert!(text.contains("alkaid_k8s_reconciles_total{controller=\"Vpc\"} 1"));
        assert!(
            text.contains("alkaid_k8s_reconcile_errors_total{controller=\"Vpc\",error=\"kube\"} 2")
        );
        assert!(text.contains("alkaid_k8s_mirror_writes_total{kind=\"Endpoint\",op=\"apply\"} 1"));
        assert_eq!(m.errors("Vpc", "kube"), 2);
    }
}
