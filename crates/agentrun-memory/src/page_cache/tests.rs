//! The page-cache estimate: least recently used files go first when a load wires memory.

use super::*;

const GB: u64 = 1_000_000_000;

fn host(ram_gb: u64, reserve_gb: u64) -> HostMemory {
    HostMemory {
        ram_bytes: ram_gb * GB,
        os_reserve_bytes: reserve_gb * GB,
        warm_bytes_per_second: 10e9,
        load_fixed_seconds: 2.0,
    }
}

#[test]
fn capacity_is_ram_less_reserve_less_wired_memory() {
    let host = host(64, 6);
    assert_eq!(host.cache_capacity(0), 58 * GB);
    assert_eq!(host.cache_capacity(50 * GB), 8 * GB);
    assert_eq!(host.cache_capacity(70 * GB), 0);
    assert!((host.warm_load_seconds(20 * GB) - 4.0).abs() < 1e-9);
}

#[test]
fn trimming_drops_the_least_recently_used_files_first() {
    let mut cache = CachedFiles::default();
    cache.insert(0, 10 * GB);
    cache.insert(1, 20 * GB);
    cache.insert(2, 5 * GB);
    // Touching 0 again makes it the most recent.
    cache.insert(0, 10 * GB);
    cache.trim(16 * GB);
    assert!(!cache.contains(1), "the oldest file goes first");
    assert!(cache.contains(0) && cache.contains(2));
    cache.trim(9 * GB);
    assert!(
        !cache.contains(2) && !cache.contains(0),
        "10 GB no longer fits"
    );
}

#[test]
fn a_load_takes_its_file_out_and_shrinks_the_cache() {
    let host = host(64, 6);
    let mut cache = CachedFiles::default();
    // A 33 GB model unloaded a while ago, then an 8 GB one.
    cache.insert(0, 33 * GB);
    cache.insert(1, 8 * GB);
    // 10 GB are wired now; a 24 GB model loads: 58 - 34 = 24 GB of cache left.
    let after = project(
        &cache,
        &host,
        10 * GB,
        [Step::Load {
            runner: 2,
            wired_bytes: 24 * GB,
        }],
    );
    assert!(
        !after.contains(0),
        "33 GB no longer fit: it was the least recent"
    );
    assert!(after.contains(1));
    // Had the 10 GB model unloaded before the 33 GB one, it would be the older file and
    // leave first, and the 33 GB file would survive in the room it freed.
    let mut cache = CachedFiles::default();
    let after = project(
        &cache,
        &host,
        43 * GB,
        [
            Step::Unload {
                runner: 1,
                wired_bytes: 10 * GB,
                file_bytes: 8 * GB,
            },
            Step::Unload {
                runner: 0,
                wired_bytes: 33 * GB,
                file_bytes: 33 * GB,
            },
            Step::Load {
                runner: 2,
                wired_bytes: 24 * GB,
            },
        ],
    );
    assert!(after.contains(0) && !after.contains(1));
    cache.insert(3, 0);
    assert!(
        !cache.contains(3),
        "a file of unknown size is never taken as cached"
    );
}
