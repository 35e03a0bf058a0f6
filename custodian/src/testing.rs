//! A log for tests ([`TestLog`]): the gate's test world
//! ([`daylight_gate::testkit::World`]) behind [`LogClient`], with failures
//! to inject. Submitted records are appended to the world's tree (the same
//! bytes again answer the same index, as the real log does) and proofs are
//! cut against its current size, cosigned by its three witnesses now.
//!
//! Never use it for anything real: the world's keys are public.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use daylight_core::LeafIndex;
use daylight_gate::testkit::World;

use crate::log::{LogClient, LogError};

/// What the test log does wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every submission is refused (403 `unknown_signer`).
    pub refuse: bool,
    /// Nothing answers (submissions and proofs).
    pub unreachable: bool,
    /// Submissions are taken, but no checkpoint ever covers them (proofs
    /// answer "not yet").
    pub never_include: bool,
    /// Proofs are cosigned by one witness only (below the test policy's
    /// quorum of two).
    pub one_cosigner: bool,
}

/// The test log.
pub struct TestLog {
    world: Mutex<World>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    faults: Faults,
    indices: HashMap<Vec<u8>, u64>,
    submitted: Vec<Vec<u8>>,
}

impl TestLog {
    /// A log over `world`.
    pub fn new(world: World) -> TestLog {
        TestLog {
            world: Mutex::new(world),
            state: Mutex::new(State::default()),
        }
    }

    /// The world, to cut bundles and read policies from.
    pub fn world(&self) -> MutexGuard<'_, World> {
        // A test that panicked while holding it has failed already.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// Every record the log took, in order, each once.
    pub fn submitted(&self) -> Vec<Vec<u8>> {
        self.state().submitted.clone()
    }

    fn unreachable() -> LogError {
        LogError::Unreachable {
            url: "test-log".into(),
            why: "nothing answers there (injected)".into(),
        }
    }
}

#[async_trait]
impl LogClient for TestLog {
    async fn submit(&self, record: &[u8]) -> Result<u64, LogError> {
        let mut state = self.state();
        if state.faults.unreachable {
            return Err(Self::unreachable());
        }
        if state.faults.refuse {
            return Err(LogError::Refused {
                status: 401,
                code: "unknown_signer".into(),
                detail: "injected refusal".into(),
            });
        }
        if let Some(&i) = state.indices.get(record) {
            return Ok(i);
        }
        let index = self.world().append(record).0;
        state.indices.insert(record.to_vec(), index);
        state.submitted.push(record.to_vec());
        Ok(index)
    }

    async fn proof(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        let faults = self.state().faults;
        if faults.unreachable {
            return Err(Self::unreachable());
        }
        if faults.never_include {
            return Ok(None);
        }
        let world = self.world();
        if index >= world.tree.size().get() {
            return Err(LogError::Refused {
                status: 404,
                code: "not_found".into(),
                detail: format!("no entry {index}"),
            });
        }
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
        let cosigners: &[(usize, u64)] = if faults.one_cosigner {
            &[(0, now)]
        } else {
            &[(0, now), (1, now), (2, now)]
        };
        Ok(Some(world.proof(LeafIndex(index), cosigners)))
    }
}
