//! The conformance suite, unchanged, against sessyncd over a Unix socket, over TCP and
//! over TLS (each case on a fresh daemon whose clock only moves on `DEBUG.ADVANCE`).

#![cfg(feature = "daemon")]

mod conformance;
mod daemon;

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use daemon::{Daemon, start, start_tls};
use sessync::Store;

enum Remote {
    Unix,
    Tcp,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls,
}

struct RemoteHarness {
    store: Store,
    control: BufReader<UnixStream>,
    _daemon: Daemon,
}

impl conformance::Harness for RemoteHarness {
    fn store(&self) -> &Store {
        &self.store
    }
    fn advance(&self, by: Duration) {
        let ms = by.as_millis().to_string();
        let mut c = self.control.get_ref();
        write!(c, "*2\r\n$13\r\nDEBUG.ADVANCE\r\n${}\r\n{ms}\r\n", ms.len()).unwrap();
        let mut line = String::new();
        BufReader::new(self.control.get_ref())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "+OK\r\n");
    }
}

impl conformance::Backend for Remote {
    fn open(&self, options: &str) -> Box<dyn conformance::Harness> {
        let store = format!("mem://?{options}");
        let args = ["--manual-clock", "--store", &store];
        let d = match self {
            Remote::Tls => start_tls(&args),
            _ => start(&args),
        };
        let url = match self {
            Remote::Unix => d.url_unix(),
            Remote::Tcp | Remote::Tls => d.url_tcp(),
        };
        let store = Store::open(&url).expect("the daemon is up");
        let control = BufReader::new(UnixStream::connect(&d.sock).unwrap());
        Box::new(RemoteHarness {
            store,
            control,
            _daemon: d,
        })
    }
}

#[test]
fn sessyncd_over_a_unix_socket_honours_the_contract() {
    conformance::run_all(&Remote::Unix);
}

#[test]
fn sessyncd_over_tcp_honours_the_contract() {
    conformance::run_all(&Remote::Tcp);
}

#[test]
#[cfg(feature = "tls")]
fn sessyncd_over_tls_honours_the_contract() {
    conformance::run_all(&Remote::Tls);
}
