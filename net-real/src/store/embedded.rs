//! The embedded store: one server, nothing to set up. The registry keeps
//! the directory in memory and decides every claim itself; this store
//! only makes the name bindings durable, in SQLite ([`NameBindings`]), a
//! drain's operations per transaction, as before there was a seam.

use super::Store;
use crate::bindings::{BindingsError, NameBindings};
use natter_core::registry::{Binding, ClusterConfig, StoreInput, StoreOp};
use std::time::Duration;

/// Memory plus, if given, the SQLite name bindings. Without them the
/// bindings live until the server stops.
#[derive(Debug, Default)]
pub struct Embedded {
    bindings: Option<NameBindings>,
}

impl Embedded {
    pub fn new(bindings: Option<NameBindings>) -> Self {
        Self { bindings }
    }
}

impl From<NameBindings> for Embedded {
    fn from(bindings: NameBindings) -> Self {
        Self::new(Some(bindings))
    }
}

impl Store for Embedded {
    type Error = BindingsError;

    fn cluster(&self) -> Option<ClusterConfig> {
        None
    }

    async fn start(
        &mut self,
        now_unix: u64,
        name_ttl: Duration,
    ) -> Result<Vec<Binding>, Self::Error> {
        match &mut self.bindings {
            Some(bindings) => {
                let live = bindings.load_live(now_unix, name_ttl)?;
                let count = live.len();
                tracing::info!(bindings = count, "{count} names bound to keys");
                Ok(live)
            }
            None => Ok(Vec::new()),
        }
    }

    fn apply(&mut self, ops: &[StoreOp]) {
        let Some(bindings) = &mut self.bindings else {
            return;
        };
        if let Err(e) = bindings.apply(ops) {
            tracing::error!(
                error = %e,
                "cannot record {} name binding changes: {e}; they hold until the server stops",
                ops.len()
            );
        }
    }

    async fn next(&mut self) -> StoreInput {
        std::future::pending().await
    }
}
