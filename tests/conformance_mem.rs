//! The conformance suite against `mem://`, with an injected clock.

mod conformance;

use std::{sync::Arc, time::Duration};

use sessync::{ManualClock, Store};

struct Mem;

struct MemHarness {
    store: Store,
    clock: Arc<ManualClock>,
}

impl conformance::Harness for MemHarness {
    fn store(&self) -> &Store {
        &self.store
    }
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

impl conformance::Backend for Mem {
    fn open(&self, options: &str) -> Box<dyn conformance::Harness> {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Store::open_with_clock(&format!("mem://?{options}"), clock.clone())
            .expect("conformance options are valid");
        Box::new(MemHarness { store, clock })
    }
}

#[test]
fn memory_backend_honours_the_contract() {
    conformance::run_all(&Mem);
}
