//! Finding the GPU budget when a workflow says `gpu_budget: auto`, and the machine's RAM
//! for the planner's page-cache estimate.

use std::process::Command;

use agentrun_memory::HostMemory;

/// Bytes in the MiB that macOS and `nvidia-smi` report.
const MIB: u64 = 1024 * 1024;

/// The GPU memory of this machine, or `None` when it cannot be read.
///
/// On macOS: `sysctl iogpu.wired_limit_mb` when it was raised, else Metal's
/// default share of the unified memory (two thirds up to 36 GB, three quarters
/// above). Elsewhere: the total of `nvidia-smi`'s GPUs, when it is installed.
pub fn detect_gpu_budget() -> Option<u64> {
    if cfg!(target_os = "macos") {
        let wired_mb = sysctl("iogpu.wired_limit_mb").unwrap_or(0);
        if wired_mb > 0 {
            return Some(wired_mb * MIB);
        }
        let memory = sysctl("hw.memsize")?;
        return Some(metal_default_share(memory));
    }
    nvidia_total()
}

/// What the operating system and other programs are taken to keep of the RAM: a tenth of
/// it, at least 4 GB.
const MIN_OS_RESERVE: u64 = 4_000_000_000;
/// How fast a load reads a weights file still in the page cache: a memory copy, taken
/// conservatively (machines with unified memory copy faster).
const WARM_BYTES_PER_SECOND: f64 = 10.0e9;
/// A load's fixed cost (the runner's start-up), seconds; the planner's prior elsewhere too.
const LOAD_FIXED_SECONDS: f64 = 2.0;

/// This machine's memory for the planner's page-cache estimate (meaningful when the Ollama
/// server runs here), or `None` when it cannot be read: `hw.memsize` on macOS,
/// `/proc/meminfo` elsewhere.
pub fn detect_host_memory() -> Option<HostMemory> {
    let ram_bytes = if cfg!(target_os = "macos") {
        sysctl("hw.memsize")?
    } else {
        meminfo_total(&std::fs::read_to_string("/proc/meminfo").ok()?)?
    };
    Some(host_memory(ram_bytes))
}

/// The page-cache figures of a machine with `ram_bytes` of RAM.
pub fn host_memory(ram_bytes: u64) -> HostMemory {
    HostMemory {
        ram_bytes,
        os_reserve_bytes: (ram_bytes / 10).max(MIN_OS_RESERVE),
        warm_bytes_per_second: WARM_BYTES_PER_SECOND,
        load_fixed_seconds: LOAD_FIXED_SECONDS,
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(value * 1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// The command that raises the GPU limit on macOS to `bytes` (rounded up to MiB).
pub fn macos_raise_command(bytes: u64) -> String {
    format!("sudo sysctl iogpu.wired_limit_mb={}", bytes.div_ceil(MIB))
}

/// Metal's default GPU share of unified memory.
fn metal_default_share(memory_bytes: u64) -> u64 {
    if memory_bytes <= 36 * 1_000_000_000 {
        memory_bytes / 3 * 2
    } else {
        memory_bytes / 4 * 3
    }
}

fn sysctl(name: &str) -> Option<u64> {
    let output = Command::new("sysctl").args(["-n", name]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn nvidia_total() -> Option<u64> {
    let output = Command::new("nvidia-smi")
        .args(["--query-gpu=memory.total", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let total: u64 = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().parse::<u64>().ok())
        .sum();
    (total > 0).then_some(total * MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metal_gives_two_thirds_of_small_and_three_quarters_of_large_memory() {
        assert_eq!(metal_default_share(24_000_000_000), 16_000_000_000);
        assert_eq!(metal_default_share(64_000_000_000), 48_000_000_000);
    }

    #[test]
    fn meminfo_gives_the_total_in_bytes() {
        let text = "MemTotal:       65536000 kB\nMemFree:         1000 kB\n";
        assert_eq!(meminfo_total(text), Some(65_536_000 * 1024));
        assert_eq!(meminfo_total("MemFree: 10 kB\n"), None);
        assert_eq!(meminfo_total("MemTotal: 10 MB\n"), None);
    }

    #[test]
    fn the_reserve_is_a_tenth_of_ram_and_at_least_4_gb() {
        assert_eq!(host_memory(64_000_000_000).os_reserve_bytes, 6_400_000_000);
        assert_eq!(host_memory(16_000_000_000).os_reserve_bytes, 4_000_000_000);
    }

    #[test]
    fn the_raise_command_rounds_up_to_whole_mebibytes() {
        assert_eq!(
            macos_raise_command(54_000_000_000),
            "sudo sysctl iogpu.wired_limit_mb=51499"
        );
    }
}
