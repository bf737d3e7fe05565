//! The connection's own commands: `PING`, `ECHO`, `QUIT`, `AUTH`, `HELLO`, `SELECT`,
//! `CLIENT`, `INFO`, `COMMAND` and, for tests, `DEBUG.ADVANCE`.

use std::time::Duration;

use subtle::ConstantTimeEq;

use super::{Conn, Fail, Next, Res, upper};

impl Conn {
    pub(super) fn ping(&mut self, args: &[Vec<u8>]) -> Res {
        match args.first() {
            Some(m) if args.len() == 1 => self.out.bulk(m),
            None => self.out.simple("PONG"),
            _ => self
                .out
                .error("ERR wrong number of arguments for 'ping' command"),
        }
        Ok(())
    }

    pub(super) fn echo(&mut self, message: &[u8]) -> Res {
        self.out.bulk(message);
        Ok(())
    }

    pub(super) fn quit(&mut self) -> Next {
        self.out.simple("OK");
        Next::Close
    }

    pub(super) fn select(&mut self, args: &[Vec<u8>]) -> Res {
        if args.len() == 1 && args[0] == b"0" {
            self.out.simple("OK");
        } else {
            self.out.error("ERR DB index is out of range");
        }
        Ok(())
    }

    pub(super) fn command(&mut self) -> Res {
        self.out.array(0);
        Ok(())
    }

    /// `DEBUG.ADVANCE ms`: moves the store's manual clock (tests only).
    pub(super) fn debug_advance(&mut self, args: &[Vec<u8>]) -> Res {
        match (
            args.first()
                .and_then(|a| std::str::from_utf8(a).ok()?.parse::<u64>().ok()),
            &self.shared.config.manual_clock,
        ) {
            (Some(ms), Some(c)) if args.len() == 1 => {
                c.advance(Duration::from_millis(ms));
                self.out.simple("OK");
                Ok(())
            }
            _ => Err(Fail("ERR usage: DEBUG.ADVANCE milliseconds".into())),
        }
    }

    fn check_token(&mut self, given: &[u8]) -> bool {
        match &self.shared.config.token {
            Some(t) => bool::from(t.as_bytes().ct_eq(given)),
            None => true,
        }
    }

    pub(super) fn auth(&mut self, args: &[Vec<u8>]) -> Result<(), Fail> {
        // AUTH token, or AUTH default token (the username is ignored).
        let token = match args {
            [t] => t,
            [_, t] => t,
            _ => {
                return Err(Fail(
                    "ERR wrong number of arguments for 'auth' command".into(),
                ));
            }
        };
        if self.shared.config.token.is_none() {
            return Err(Fail(
                "ERR AUTH <password> called without any password configured for the default user."
                    .into(),
            ));
        }
        if self.check_token(token) {
            self.authed = true;
            self.out.simple("OK");
            Ok(())
        } else {
            Err(Fail(
                "WRONGPASS invalid username-password pair or user is disabled.".into(),
            ))
        }
    }

    pub(super) fn hello(&mut self, args: &[Vec<u8>]) -> Result<(), Fail> {
        let mut i = 0;
        let mut proto = if self.out.resp3 { 3 } else { 2 };
        if let Some(v) = args.first() {
            proto = match v.as_slice() {
                b"2" => 2,
                b"3" => 3,
                _ => return Err(Fail("NOPROTO unsupported protocol version".into())),
            };
            i = 1;
        }
        while i < args.len() {
            match upper(&args[i]).as_str() {
                "AUTH" if i + 2 < args.len() => {
                    // HELLO … AUTH <username> <token>: the username is ignored.
                    let token = args[i + 2].clone();
                    if self.shared.config.token.is_some() && !self.check_token(&token) {
                        return Err(Fail(
                            "WRONGPASS invalid username-password pair or user is disabled.".into(),
                        ));
                    }
                    self.authed = true;
                    i += 3;
                }
                "SETNAME" if i + 1 < args.len() => {
                    self.name = Some(String::from_utf8_lossy(&args[i + 1]).into_owned());
                    i += 2;
                }
                _ => return Err(Fail("ERR syntax error in HELLO".into())),
            }
        }
        if !self.authed {
            return Err(Fail(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
                    .into(),
            ));
        }
        self.out.resp3 = proto == 3;
        let o = &mut self.out;
        o.map(7);
        o.bulk(b"server");
        o.bulk(b"sessyncd");
        o.bulk(b"version");
        o.bulk(env!("CARGO_PKG_VERSION").as_bytes());
        o.bulk(b"proto");
        o.int(proto);
        o.bulk(b"id");
        o.int(1);
        o.bulk(b"mode");
        o.bulk(b"standalone");
        o.bulk(b"role");
        o.bulk(b"master");
        o.bulk(b"modules");
        o.array(0);
        Ok(())
    }

    pub(super) fn client(&mut self, args: &[Vec<u8>]) -> Result<(), Fail> {
        let sub = args.first().map(|s| upper(s)).unwrap_or_default();
        match sub.as_str() {
            "SETNAME" if args.len() == 2 => {
                self.name = Some(String::from_utf8_lossy(&args[1]).into_owned());
                self.out.simple("OK");
            }
            "GETNAME" => match &self.name {
                Some(n) => {
                    let n = n.clone();
                    self.out.bulk(n.as_bytes());
                }
                None => self.out.null(),
            },
            "SETINFO" => self.out.simple("OK"),
            "ID" => self.out.int(1),
            _ => {
                return Err(Fail(format!(
                    "ERR unknown subcommand '{}'",
                    sub.to_lowercase()
                )));
            }
        }
        Ok(())
    }

    pub(super) fn info(&mut self, args: &[Vec<u8>]) -> Res {
        let wanted: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .collect();
        let text = super::super::metrics::info(&self.shared, &wanted);
        self.out.bulk(text.as_bytes());
        Ok(())
    }
}
