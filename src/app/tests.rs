use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::engine::testing;
use crate::reports::agent_13;

/// An engine that panics is logged, marked down, counted and started again; one that is
/// asked to stop is not restarted.
#[tokio::test]
async fn a_panicking_engine_is_restarted_and_shows_down() {
    let metrics = testing::metrics(&[60.0], 10);
    let op = testing::operation(&metrics, &[agent_13::NAME]);
    op.data().reports[0].health.up = true;
    let (stop_tx, stop_rx) = watch::channel(false);
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    let engine_stop = stop_rx.clone();
    let supervisor = tokio::spawn(supervise(
        op.clone(),
        move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let mut stop = engine_stop.clone();
            async move {
                if n < 2 {
                    panic!("boom {n}");
                }
                let _ = stop.changed().await;
            }
        },
        stop_rx,
        Duration::from_millis(10),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while starts.load(Ordering::SeqCst) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "not restarted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    {
        let data = op.read();
        assert_eq!(data.restarts, 2);
        assert!(!data.up());
        assert_eq!(data.last_error.as_deref(), Some("poller panicked: boom 1"));
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), supervisor)
        .await
        .expect("the supervisor stops with the engines")
        .unwrap();
    assert_eq!(starts.load(Ordering::SeqCst), 3);
}
