//! `--shard=I/N` on the exporter binary: N replicas with one configuration file follow
//! disjoint sets of operations that together are all of them; a replica whose shard
//! holds no operation still starts, serves its own metrics and is ready.

use std::time::Duration;

use crate::support::clock::anchored;
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::Exporter;
use crate::support::wait::{check, Wait};
use wolkvox_exporter::shard::Shard;
use wolkvox_sim::{Wolkvox, WolkvoxConfig};

const NAMES: [&str; 2] = ["cdmx", "bogota"];
const REPLICAS: u32 = 3;

#[test]
fn replicas_split_the_operations_and_an_empty_shard_is_ready() {
    // The names land in shards 0 and 1 of 3 (pinned in the unit tests); shard 2 is empty.
    let owners: Vec<u32> = NAMES.iter().map(|n| Shard::of(n, REPLICAS)).collect();
    assert_eq!(owners, [0, 1]);
    let fakes: Vec<Wolkvox> = NAMES
        .iter()
        .map(|_| Wolkvox::start(WolkvoxConfig::new(anchored(chrono::Duration::hours(1)).0)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(&dir.path().join("unused.json"));
    for (name, fake) in NAMES.iter().zip(&fakes) {
        config = config.op(Operation::fake(name, fake).reports(&["agent_13"]));
    }
    let file = config.write(dir.path());

    for index in 0..REPLICAS {
        let state = dir.path().join(format!("state-{index}.json"));
        let args = [
            file.clone(),
            format!("--shard={index}/{REPLICAS}"),
            format!("--state.path={}", state.display()),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before: Vec<u64> = fakes.iter().map(Wolkvox::requests).collect();
        let mut exporter = Exporter::start(&args);
        let mine: Vec<usize> = (0..NAMES.len()).filter(|&i| owners[i] == index).collect();
        if mine.is_empty() {
            let logs = exporter.wait_for_log("this shard follows no operation", Duration::from_secs(10));
            assert!(logs.contains(&format!("shard={index}/{REPLICAS}")), "{logs}");
        }
        for &i in &mine {
            let fake = &fakes[i];
            Wait::new(format!("{} polled by shard {index}", NAMES[i]), Duration::from_secs(30))
                .until(|| check(fake.requests() > 0, || "no request yet"));
        }
        let metrics = exporter.metrics();
        assert!(metrics.contains("wolkvox_exporter_build_info{"), "{metrics}");
        for (i, name) in NAMES.iter().enumerate() {
            let series = format!("wolkvox_up{{operation=\"{name}\"}}");
            assert_eq!(metrics.contains(&series), mine.contains(&i), "shard {index}, {name}:\n{metrics}");
        }
        assert!(exporter.terminate().success(), "{}", exporter.logs());
        // The other shards' operations got no request from this replica.
        for (i, fake) in fakes.iter().enumerate() {
            if !mine.contains(&i) {
                assert_eq!(fake.requests(), before[i], "shard {index} polled {}", NAMES[i]);
            }
        }
    }
}
