//! What this machine (or container) gives the process, and what `serve` sizes from it: the
//! CPUs, the memory, and how many large `/Bulk` bodies may be handled at once.

use crate::config::ScimSettings;

/// A parsed SCIM body with its working state costs up to about this many times its size in
/// memory (measured: an 8 MiB Bulk body, ~200 MB).
const BODY_MEMORY_FACTOR: u64 = 25;
/// At most this many large bodies at once, however much memory there is.
const MAX_LARGE_REQUEST_PERMITS: u64 = 16;

/// `scim.max_concurrent_large_requests`, or when unset: half of `memory_bytes` (the
/// container's limit) divided by what one body of `scim.max_payload_bytes` may cost, between 1
/// and 16.
pub fn large_request_permits(scim: &ScimSettings, memory_bytes: Option<u64>) -> u32 {
    if let Some(n) = scim.max_concurrent_large_requests {
        return n.max(1);
    }
    let per_body = scim.max_payload_bytes.saturating_mul(BODY_MEMORY_FACTOR).max(1);
    let permits = memory_bytes.map_or(1, |m| (m / 2) / per_body);
    u32::try_from(permits.clamp(1, MAX_LARGE_REQUEST_PERMITS)).unwrap_or(1)
}

/// The memory this process may use: the cgroup limit (v2, then v1), else the machine's.
pub fn available_memory_bytes() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        // v1 reports "no limit" as a huge number.
        .filter(|&v| v < (1 << 60));
    cgroup.or_else(|| {
        let meminfo = read("/proc/meminfo")?;
        let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    })
}

/// The CPUs this process may use (respecting cgroup CPU quotas).
pub fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_request_permits_sized_from_memory() {
        let scim = ScimSettings::default();
        const MIB: u64 = 1024 * 1024;
        // 8 MiB bodies cost ~200 MiB each; half the memory is theirs.
        assert_eq!(large_request_permits(&scim, Some(512 * MIB)), 1);
        assert_eq!(large_request_permits(&scim, Some(2048 * MIB)), 5);
        assert_eq!(large_request_permits(&scim, Some(64 * 1024 * MIB)), 16);
        assert_eq!(large_request_permits(&scim, Some(MIB)), 1);
        assert_eq!(large_request_permits(&scim, None), 1);
        let set =
            ScimSettings { max_concurrent_large_requests: Some(3), ..ScimSettings::default() };
        assert_eq!(large_request_permits(&set, Some(MIB)), 3);
    }
}
