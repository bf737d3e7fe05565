//! The commands of sessyncd, one file per group, and [`Conn::request`], which checks a
//! request's right to run and hands it to its group:
//!
//! - `connection.rs`: the connection's own commands (`PING`, `ECHO`, `QUIT`, `AUTH`,
//!   `HELLO`, `SELECT`, `CLIENT`, `INFO`, `COMMAND`, `DEBUG.ADVANCE`);
//! - `keys.rs`: the plain key commands (`GET`, `SET`, `DEL`, …) on the key map;
//! - `session.rs`: the `SESS.*` commands, one per store operation.

mod connection;
mod keys;
mod session;

use self::session::Args;
use super::connection::{Conn, Io, Next};
use crate::{error::Error, protocol};

/// A command's failure, as the RESP error to send.
pub(crate) struct Fail(pub String);

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail(protocol::error::reply(&e))
    }
}

/// What a command gives back: nothing (its reply is written), or the error to send.
pub(crate) type Res = Result<(), Fail>;

/// A command name or option word in upper case.
fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

impl Conn {
    /// Answers one request (its arguments, the command's name first) into `self.out`.
    /// `io` and `buf` are the connection's stream and read buffer, which a lock's wait
    /// keeps reading (see `SESS.LOCK`).
    pub(in crate::server) async fn request(
        &mut self,
        mut args: Vec<Vec<u8>>,
        io: &mut Io,
        buf: &mut Vec<u8>,
    ) -> Next {
        if args.is_empty() {
            return Next::Continue;
        }
        let name = upper(&args.remove(0));
        if !self.authed && !matches!(name.as_str(), "AUTH" | "HELLO" | "PING" | "QUIT") {
            self.out.error("NOAUTH Authentication required.");
            return Next::Continue;
        }
        let r = match name.as_str() {
            "PING" => self.ping(&args),
            "ECHO" if args.len() == 1 => self.echo(&args[0]),
            "QUIT" => return self.quit(),
            "AUTH" => self.auth(&args),
            "HELLO" => self.hello(&args),
            "SELECT" => self.select(&args),
            "CLIENT" => self.client(&args),
            "INFO" => self.info(&args),
            "COMMAND" => self.command(),
            "DEBUG.ADVANCE" if self.shared.config.manual_clock.is_some() => {
                self.debug_advance(&args)
            }
            "GET" | "SET" | "DEL" | "EXISTS" | "EXPIRE" | "PEXPIRE" | "TTL" | "PTTL" | "MGET"
            | "SCAN" => self.keys(&name, args),
            "SESS.LOCK" => self.lock(Args::new(name.clone(), args), io, buf).await,
            n if n.starts_with("SESS.") => {
                let a = Args::new(name.clone(), args);
                session::session(&self.shared.store, n, a, &mut self.out)
            }
            _ => Err(Fail(format!(
                "ERR unknown command '{}', with args beginning with: ",
                name.to_lowercase()
            ))),
        };
        if let Err(Fail(m)) = r {
            self.out.error(&m);
        }
        Next::Continue
    }
}
