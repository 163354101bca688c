//! Finding the GPU budget when a workflow says `gpu_budget: auto`.

use std::process::Command;

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
    fn the_raise_command_rounds_up_to_whole_mebibytes() {
        assert_eq!(
            macos_raise_command(54_000_000_000),
            "sudo sysctl iogpu.wired_limit_mb=51499"
        );
    }
}
