//! The main job: a small HTTP/1.1 server whose worker threads share one session store.
//!
//! ```text
//! cargo run --release --example server -- --port 8080 --workers 4 --store 'mem://?ttl=30m'
//! curl -s -c jar -b jar http://127.0.0.1:8080/     # run it a few times
//! ```
//!
//! Every worker accepts and serves connections on its own. Each visit to `/` takes the
//! visitor's session lock, increments `visits` and commits; the page names the worker that
//! served it and the count, which keeps counting whichever worker answers. `/logout`
//! destroys the session. Requests are read with a size limit and a timeout; anything
//! malformed gets a 4xx answer and the worker carries on.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::Duration,
};

use sessync::{FlowOptions, Sessions, Store};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

struct Args {
    port: u16,
    workers: usize,
    store: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 8080,
        workers: 4,
        store: "mem://".to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--workers" => {
                args.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?;
                if !(1..=256).contains(&args.workers) {
                    return Err("--workers must be between 1 and 256".into());
                }
            }
            "--store" => args.store = value()?,
            "--help" | "-h" => {
                return Err("usage: server [--port N] [--workers N] [--store URL]".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let store = match Store::open(&args.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open the store: {e}");
            std::process::exit(2);
        }
    };
    let sessions = match Sessions::new(store, FlowOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bad session settings: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", args.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    println!(
        "listening on http://127.0.0.1:{port} with {} workers, store {}",
        args.workers, args.store
    );
    let _ = io::stdout().flush();

    let workers: Vec<_> = (0..args.workers)
        .map(|w| {
            let listener = listener.try_clone().expect("the listener can be shared");
            let sessions = sessions.clone();
            thread::spawn(move || {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => serve(w, &sessions, stream),
                        Err(e) => eprintln!("worker {w}: accept failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    cookie: Option<String>,
}

enum Bad {
    /// Not HTTP we understand.
    Malformed(&'static str),
    /// The head is over `MAX_HEAD`.
    TooLarge,
    /// The client went away or timed out: nothing to answer.
    Gone,
}

fn read_head(stream: &TcpStream) -> Result<Request, Bad> {
    let mut reader = BufReader::new(stream.take(MAX_HEAD as u64 + 1));
    let mut total = 0;
    let mut line = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|_| Bad::Gone)?;
        total += n;
        if total > MAX_HEAD {
            return Err(Bad::TooLarge);
        }
        if n == 0 {
            return Err(if lines.is_empty() {
                Bad::Gone
            } else {
                Bad::Malformed("the request head ended early")
            });
        }
        let text = std::str::from_utf8(&line).map_err(|_| Bad::Malformed("not UTF-8"))?;
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            break;
        }
        lines.push(text.to_string());
    }
    let mut first = lines
        .first()
        .ok_or(Bad::Malformed("no request line"))?
        .split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Err(Bad::Malformed(
            "the request line is not METHOD PATH VERSION",
        ));
    };
    if !version.starts_with("HTTP/1.") || !path.starts_with('/') {
        return Err(Bad::Malformed("not an HTTP/1.x request"));
    }
    let mut cookies: Vec<&str> = Vec::new();
    for h in &lines[1..] {
        let (name, value) = h
            .split_once(':')
            .ok_or(Bad::Malformed("a header line without a colon"))?;
        if name.eq_ignore_ascii_case("cookie") {
            cookies.push(value.trim());
        }
    }
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        cookie: (!cookies.is_empty()).then(|| cookies.join("; ")),
    })
}

fn respond(mut stream: &TcpStream, status: &str, set_cookie: Option<&str>, body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(c) = set_cookie {
        head.push_str("Set-Cookie: ");
        head.push_str(c);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    // A client that has gone away cannot be answered; the worker carries on.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body.as_bytes()))
        .and_then(|_| stream.flush());
}

fn serve(worker: usize, sessions: &Sessions, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let req = match read_head(&stream) {
        Ok(r) => r,
        Err(Bad::Gone) => return,
        Err(Bad::TooLarge) => {
            return respond(
                &stream,
                "431 Request Header Fields Too Large",
                None,
                "request head too large\n",
            );
        }
        Err(Bad::Malformed(why)) => {
            return respond(&stream, "400 Bad Request", None, &format!("{why}\n"));
        }
    };
    if req.method != "GET" {
        return respond(&stream, "405 Method Not Allowed", None, "only GET\n");
    }
    let outcome = match req.path.as_str() {
        "/" => visit(worker, sessions, req.cookie.as_deref()),
        "/logout" => logout(worker, sessions, req.cookie.as_deref()),
        _ => return respond(&stream, "404 Not Found", None, "not found\n"),
    };
    match outcome {
        Ok((cookie, body)) => respond(&stream, "200 OK", cookie.as_deref(), &body),
        Err(e) => respond(
            &stream,
            "503 Service Unavailable",
            None,
            &format!("session store: {e}\n"),
        ),
    }
}

type Page = (Option<String>, String);

fn visit(worker: usize, sessions: &Sessions, cookie: Option<&str>) -> sessync::Result<Page> {
    let mut s = sessions.begin(cookie, true)?;
    let visits = s.incr("visits", 1)?;
    let done = s.commit()?;
    Ok((
        done.set_cookie,
        format!("worker {worker} served you; visits: {visits}\n"),
    ))
}

fn logout(worker: usize, sessions: &Sessions, cookie: Option<&str>) -> sessync::Result<Page> {
    let mut s = sessions.begin(cookie, false)?;
    s.destroy();
    let done = s.commit()?;
    Ok((done.set_cookie, format!("worker {worker}: logged out\n")))
}
