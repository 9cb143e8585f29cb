//! The pacer's clock: a tick every [`TICK`] inside loadgen's event loop, from a
//! timerfd on Linux and from tokio's millisecond timer elsewhere.

#[cfg(target_os = "linux")]
use tokio::io::unix::AsyncFd;

use crate::TICK;

/// Wakes the pacer every [`TICK`], inside the event loop: a timerfd on Linux.
#[cfg(target_os = "linux")]
pub struct Ticker {
    timer: AsyncFd<std::os::fd::OwnedFd>,
}

#[cfg(target_os = "linux")]
impl Ticker {
    pub fn new() -> Result<Ticker, String> {
        use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
        let timer = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(|error| format!("timerfd: {error}"))?;
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(TICK.subsec_nanos()),
        };
        rustix::time::timerfd_settime(
            &timer,
            TimerfdTimerFlags::empty(),
            &Itimerspec {
                it_interval: tick,
                it_value: tick,
            },
        )
        .map_err(|error| format!("timerfd: {error}"))?;
        // `AsyncFd::new` is deprecated because a general `T: AsRawFd` could hand out another
        // descriptor later; an `OwnedFd` owned by the `AsyncFd` cannot, which is the safe case.
        // (Its replacement, `register`, is `unsafe`, which this workspace forbids.)
        #[allow(deprecated)]
        let timer = AsyncFd::new(timer).map_err(|error| format!("timerfd: {error}"))?;
        Ok(Ticker { timer })
    }

    pub async fn tick(&mut self) -> Result<(), String> {
        let mut ready = self
            .timer
            .readable()
            .await
            .map_err(|error| format!("timerfd: {error}"))?;
        // One read takes the whole expiration count, so the timer is not readable again until
        // the next tick (a new edge).
        let mut expirations = [0u8; 8];
        match rustix::io::read(self.timer.get_ref(), &mut expirations[..]) {
            Ok(_) | Err(rustix::io::Errno::AGAIN) => {
                ready.clear_ready();
                Ok(())
            }
            Err(error) => Err(format!("timerfd: {error}")),
        }
    }
}

/// Elsewhere, tokio's timer, whose resolution is a millisecond: requests go out in bursts of
/// a millisecond's worth, which the server benchmark's figures do not assume.
#[cfg(not(target_os = "linux"))]
pub struct Ticker {
    interval: tokio::time::Interval,
}

#[cfg(not(target_os = "linux"))]
impl Ticker {
    pub fn new() -> Result<Ticker, String> {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Ok(Ticker { interval })
    }

    pub async fn tick(&mut self) -> Result<(), String> {
        self.interval.tick().await;
        Ok(())
    }
}
