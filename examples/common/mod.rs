//! What the memory and soak load drivers share (`#[path]`-included by each example).

/// A session of about 1 KiB of JSON, shaped like those of `daemon_load`: a user, an
/// 8-item cart, a view count, and a flash message of `flash` bytes.
pub fn session_json(i: u64, flash: usize) -> String {
    serde_json::json!({
        "user": {"id": i, "name": format!("visitor-{i}")},
        "cart": (0..8).map(|n| serde_json::json!({"sku": format!("SKU-{n:05}"), "qty": 1, "price": 1999})).collect::<Vec<_>>(),
        "views": 0,
        "flash": "x".repeat(flash),
    })
    .to_string()
}

/// `/proc/PID/status`'s VmRSS in KiB (`pid`: a number or `self`), 0 if unreadable.
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
