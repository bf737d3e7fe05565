use sessync::*;
fn main() {
    let store = Store::open("mem://").unwrap();
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(100_000);
    let ids: Vec<SessionId> = (0..n).map(|_| SessionId::generate()).collect();
    let json = format!("{{\"a\":\"{}\",\"views\":0}}", "x".repeat(1000));
    for id in &ids { store.write(id, SessionData::from_json(&json).unwrap(), WriteOpts::default()).unwrap(); }
    let t = std::time::Instant::now();
    let mut x = 0u64;
    for i in 0..2_000_000usize { let r = store.fetch(&ids[(i * 7919) % n]).unwrap().unwrap(); x += r.version; }
    println!("{:?} per fetch {}", t.elapsed() / 2_000_000, x);
}
