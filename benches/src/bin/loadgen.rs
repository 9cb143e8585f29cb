//! `loadgen`: an open-loop HTTP load generator for ratelab's server benchmarks. It sends POSTs
//! to one loopback URL at a fixed rate for a bounded time and request count. A pacer thread
//! releases each request at its due time (to within tens of microseconds; tokio's millisecond
//! timer would send each millisecond's requests as one burst). Each latency counts from the
//! request's *scheduled* time when it goes out late because every connection was busy (so a
//! stalled server cannot hide its queue, the coordinated-omission trap of closed-loop tools
//! like wrk), and from its release otherwise. It optionally samples a
//! process's resident memory while it runs. Requests go over a fixed set of keep-alive
//! connections (as wrk2 does), so the generator stays cheap enough to share the cores.
//!
//! Usage: `loadgen --url http://127.0.0.1:PORT/v1/chat/completions --body-file req.json
//! --rate 5000 --duration-secs 10 [--max-requests N] [--keys N] [--connections 32]
//! [--rss-pid PID]`
//!
//! Prints one line of `name=value` pairs: requests done, ok, non_2xx, errors, achieved rate,
//! latency percentiles in microseconds, and RSS in KiB (start, peak, end, and at each tenth of
//! the run) when `--rss-pid` is given.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

/// Fixed-rate POST load against one loopback URL.
#[derive(clap::Parser)]
struct Arguments {
    /// The URL to POST to; must be on 127.0.0.1.
    #[arg(long)]
    url: hyper::Uri,
    /// The JSON request body.
    #[arg(long)]
    body_file: String,
    /// Requests per second, at most 1e6.
    #[arg(long)]
    rate: f64,
    /// How long to send for, at most 600.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Stop after this many requests even if time is left.
    #[arg(long, default_value_t = u64::MAX)]
    max_requests: u64,
    /// Rotate over this many keys, `sk-bench-000000` onwards.
    #[arg(long, default_value_t = 1)]
    keys: u64,
    /// Keep-alive connections sending requests, as wrk's `-c`.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Sample this process's resident memory during the run.
    #[arg(long)]
    rss_pid: Option<u32>,
}

struct Options {
    url: hyper::Uri,
    body: Bytes,
    rate: f64,
    duration: Duration,
    max_requests: u64,
    keys: u64,
    connections: u32,
    rss_pid: Option<u32>,
}

fn options() -> Result<Options, String> {
    let arguments = <Arguments as clap::Parser>::parse();
    let url = arguments.url;
    if url.host() != Some("127.0.0.1") {
        return Err(format!(
            "--url: {url} is not on 127.0.0.1; loadgen only loads loopback"
        ));
    }
    let path = arguments.body_file;
    let body = std::fs::read(&path).map_err(|error| format!("--body-file {path}: {error}"))?;
    let (rate, duration_secs) = (arguments.rate, arguments.duration_secs);
    if !(rate > 0.0 && rate <= 1e6 && duration_secs > 0.0 && duration_secs <= 600.0) {
        return Err("--rate must be in (0, 1e6] and --duration-secs in (0, 600]".to_owned());
    }
    Ok(Options {
        url,
        body: Bytes::from(body),
        rate,
        duration: Duration::from_secs_f64(duration_secs),
        max_requests: arguments.max_requests,
        keys: arguments.keys.max(1),
        connections: arguments.connections.max(1),
        rss_pid: arguments.rss_pid,
    })
}

/// Resident set size of `pid` in KiB, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    non_2xx: AtomicU64,
    errors: AtomicU64,
}

fn main() -> Result<(), String> {
    let options = options()?;
    // One thread: the generator should take one core at most, leaving the rest to the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("tokio runtime: {error}"))?;
    runtime.block_on(run(options))
}

/// What every connection task shares: the schedule, the tallies and the histogram.
struct Shared {
    options: Options,
    started: Instant,
    deadline: Instant,
    interval: Duration,
    /// Index of the next request to send; request `i` is due at `started + i * interval`.
    next: AtomicU64,
    /// One permit per request the pacer has released and no connection has claimed yet, plus
    /// one per connection at the end to tell it to stop.
    released: tokio::sync::Semaphore,
    counts: Counts,
    histogram: std::sync::Mutex<Histogram<u64>>,
}

impl Shared {
    /// Claims the next request and returns its index and due time, or `None` once the run is
    /// over by count or by time.
    fn claim(&self) -> Option<(u64, Instant)> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.started + self.interval.mul_f64(index as f64);
        (index < self.options.max_requests && due < self.deadline).then_some((index, due))
    }

    fn record(&self, outcome: Option<bool>, latency: Duration) {
        let tally = match outcome {
            Some(true) => &self.counts.ok,
            Some(false) => &self.counts.non_2xx,
            None => &self.counts.errors,
        };
        tally.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .saturating_record(micros.max(1));
    }
}

/// One keep-alive connection sending due requests one after another, as wrk2 does: when every
/// connection is busy, due requests wait, and that wait counts in their latency.
async fn connection(shared: Arc<Shared>) {
    let Some(authority) = shared
        .options
        .url
        .authority()
        .map(|found| found.as_str().to_owned())
    else {
        return;
    };
    let mut sender = None;
    loop {
        // A request released while this connection was busy is overdue: it counts from its
        // due time, the coordinated-omission correction. One this connection waited for counts
        // from when the pacer released it, so the pacer's own lateness is not the server's.
        let waited = match shared.released.try_acquire() {
            Ok(permit) => {
                permit.forget();
                false
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => match shared.released.acquire().await {
                Ok(permit) => {
                    permit.forget();
                    true
                }
                Err(_) => break,
            },
            Err(tokio::sync::TryAcquireError::Closed) => break,
        };
        let Some((index, due)) = shared.claim() else {
            break;
        };
        let now = Instant::now();
        // The pacer releases a batch a little ahead; such a request counts from when it goes.
        let start = if waited { now } else { due.min(now) };
        if sender.is_none() {
            sender = connect(&authority).await;
        }
        let Some(live) = sender.as_mut() else {
            shared.record(None, start.elapsed());
            continue;
        };
        let key = format!("Bearer sk-bench-{:06}", index % shared.options.keys);
        let request = hyper::Request::post(shared.options.url.clone())
            .header("host", authority.as_str())
            .header("content-type", "application/json")
            .header("authorization", key)
            .body(Full::new(shared.options.body.clone()));
        let outcome = match request {
            Ok(request) => send(live, request).await,
            Err(_) => None,
        };
        if outcome.is_none() {
            // The connection may be broken; the next request opens a fresh one.
            sender = None;
        }
        shared.record(outcome, start.elapsed());
    }
}

/// Releases each request at its due time, on a thread of its own: tokio's timer has millisecond
/// resolution, so connections sleeping on it sent each millisecond's requests as one burst,
/// while `std::thread::sleep` wakes within tens of microseconds. Requests due within
/// `BATCH` of a wake-up go together, which bounds the wake-ups to one per `BATCH`.
fn pace(shared: &Shared) {
    const BATCH: Duration = Duration::from_micros(100);
    let started = shared.started.into_std();
    let deadline = shared.deadline.into_std();
    let mut index: u64 = 0;
    while index < shared.options.max_requests {
        let due = started + shared.interval.mul_f64(index as f64);
        if due >= deadline {
            break;
        }
        let now = std::time::Instant::now();
        if due > now + BATCH {
            std::thread::sleep(due - now - BATCH);
            continue;
        }
        // Release every request due by now plus one batch.
        let horizon = now + BATCH;
        let mut count = 0;
        while index < shared.options.max_requests {
            let due = started + shared.interval.mul_f64(index as f64);
            if due > horizon || due >= deadline {
                break;
            }
            index += 1;
            count += 1;
        }
        shared.released.add_permits(count);
    }
    // One more permit per connection: each wakes, finds no request left to claim, and ends.
    // (Closing the semaphore instead would strand released requests no one had claimed yet.)
    shared
        .released
        .add_permits(shared.options.connections as usize);
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(authority: &str) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(driver);
    Some(sender)
}

/// Sends one request and reads the whole body: `Some(true)` for a 2xx, `None` on an I/O error.
async fn send(sender: &mut Sender, request: hyper::Request<Full<Bytes>>) -> Option<bool> {
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let success = response.status().is_success();
    response.into_body().collect().await.ok()?;
    Some(success)
}

async fn run(options: Options) -> Result<(), String> {
    let histogram =
        Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).map_err(|error| error.to_string())?;
    let rss_pid = options.rss_pid;
    let connections = options.connections;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        interval: Duration::from_secs_f64(1.0 / options.rate),
        deadline: started + options.duration,
        options,
        started,
        next: AtomicU64::new(0),
        released: tokio::sync::Semaphore::new(0),
        counts: Counts::default(),
        histogram: std::sync::Mutex::new(histogram),
    });
    let rss_start = rss_pid.and_then(rss_kib);
    let pacer = {
        let shared = shared.clone();
        std::thread::spawn(move || pace(&shared))
    };
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(connection(shared.clone())))
        .collect();
    // RSS every tenth of the run's time: flat memory shows as equal figures once every key has
    // been seen.
    let mut rss_by_tenth = Vec::new();
    let mut rss_peak = rss_start.unwrap_or(0);
    if let Some(pid) = rss_pid {
        for tenth in 1..=10u32 {
            let wake = started + shared.options.duration * tenth / 10;
            tokio::time::sleep_until(wake).await;
            let rss = rss_kib(pid).unwrap_or(0);
            rss_peak = rss_peak.max(rss);
            rss_by_tenth.push(rss.to_string());
            if tasks.iter().all(|task| task.is_finished()) {
                break;
            }
        }
    }
    // Requests still in flight at the deadline finish, bounded so a hung server cannot hold
    // the run open.
    let grace = shared.deadline + Duration::from_secs(30);
    for task in tasks {
        let _ = tokio::time::timeout_at(grace, task).await;
    }
    // The pacer has released everything by the deadline; joining it cannot block for long.
    let _ = pacer.join();
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = rss_pid.and_then(rss_kib);
    rss_peak = rss_peak.max(rss_end.unwrap_or(0));
    let counts = &shared.counts;
    let done = counts.ok.load(Ordering::Relaxed)
        + counts.non_2xx.load(Ordering::Relaxed)
        + counts.errors.load(Ordering::Relaxed);
    let histogram = shared
        .histogram
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let micros = |quantile: f64| histogram.value_at_quantile(quantile);
    let mut line = format!(
        "requests={done} ok={} non_2xx={} errors={} seconds={elapsed:.2} rate={:.1} \
         p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
        counts.ok.load(Ordering::Relaxed),
        counts.non_2xx.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
        done as f64 / elapsed,
        micros(0.5),
        micros(0.9),
        micros(0.99),
        micros(0.999),
        histogram.max(),
    );
    if let (Some(start), Some(end)) = (rss_start, rss_end) {
        line.push_str(&format!(
            " rss_start_kib={start} rss_peak_kib={rss_peak} rss_end_kib={end} rss_by_tenth_kib={}",
            rss_by_tenth.join(",")
        ));
    }
    println!("{line}");
    Ok(())
}
