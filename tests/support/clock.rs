//! Time under the tests' control: a clock the test sets and moves (shared by the
//! in-process exporter and the simulated Wolkvox), fixed reference dates, and histories
//! anchored to them for the exporter binary, which reads the real clock. The only place
//! a test reads the real date.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use wolkvox_exporter::clock::Clock;
use wolkvox_sim::SimConfig;

/// A clock that stands still until the test moves it. Clones share the time, so one
/// clock can drive the exporter (`app::Options::clock`) and the simulated Wolkvox
/// (`WolkvoxConfig::clock`, through [`TestClock::sim_clock`]) together.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn at(now: DateTime<Utc>) -> TestClock {
        TestClock(Arc::new(Mutex::new(now)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.lock() = now;
    }

    pub fn advance(&self, by: Duration) {
        *self.lock() += by;
    }

    /// The clock as the exporter takes it.
    pub fn shared(&self) -> Arc<dyn Clock> {
        Arc::new(self.clone())
    }

    /// The clock as the simulated Wolkvox takes it.
    pub fn sim_clock(&self) -> wolkvox_sim::Clock {
        let clock = self.clone();
        Arc::new(move || clock.now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        TestClock::now(self)
    }
}

pub const BOGOTA: Tz = chrono_tz::America::Bogota;

/// An instant given as the operation-local wall clock in `tz`
/// (`local(BOGOTA, 2025, 3, 13, 11, 0)`); panics on a time DST skips or repeats.
pub fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    let naive =
        NaiveDate::from_ymd_opt(y, m, d).and_then(|day| day.and_hms_opt(h, min, 0)).expect("a valid date");
    tz.from_local_datetime(&naive)
        .single()
        .unwrap_or_else(|| panic!("{naive} is not a single instant in {tz}"))
        .with_timezone(&Utc)
}

/// The end of the tests' reference history: Thursday 2025-03-13, 11:00 in Bogota, the
/// late-morning peak of a working week. The days before it are working days, and its
/// last minutes are busy, whatever day the suite runs on.
pub fn reference_end() -> DateTime<Utc> {
    local(BOGOTA, 2025, 3, 13, 11, 0)
}

/// The real clock, for tests of the exporter binary; see [`wall_minute`].
pub fn real_now() -> DateTime<Utc> {
    Utc::now()
}

/// The real clock, in whole minutes. Only for tests that run the exporter binary (which
/// reads the real clock) or talk to a server that does: place histories relative to it
/// with [`anchored`], never read a date, weekday or hour from it.
pub fn wall_minute() -> DateTime<Utc> {
    let now = real_now().timestamp();
    DateTime::from_timestamp(now.div_euclid(60) * 60, 0).expect("the real clock is in range")
}

/// The real clock to the second, for operation-local times of records served just
/// before it (same rule as [`wall_minute`]).
pub fn wall_second() -> DateTime<Utc> {
    DateTime::from_timestamp(real_now().timestamp(), 0).expect("the real clock is in range")
}

/// A closed history of `span` ending one minute before the real clock, anchored so that
/// its records are those of the same span ending at [`reference_end`]: the volume of a
/// working week's days and late-morning peak, whatever day and hour the test runs.
/// Returns the configuration and its end.
pub fn anchored(span: Duration) -> (SimConfig, DateTime<Utc>) {
    let end = wall_minute() - Duration::minutes(1);
    let mut sim = SimConfig::bounded(end - span, end);
    sim.anchor = reference_end() - span;
    (sim, end)
}
