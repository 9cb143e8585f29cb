//! `loadgen`: an open-loop HTTP load generator for ratelab's server benchmarks. It sends POSTs
//! to one loopback URL at a fixed rate for a bounded time and request count, records each
//! latency from the request's *scheduled* send time (so a stalled server cannot hide its queue,
//! the coordinated-omission trap of closed-loop tools like wrk), and optionally samples a
//! process's resident memory while it runs.
//!
//! Usage: `loadgen --url http://127.0.0.1:PORT/v1/chat/completions --body-file req.json
//! --rate 5000 --duration-secs 10 [--max-requests N] [--keys N] [--rss-pid PID]`
//!
//! Prints one line of `name=value` pairs: sent, ok, non_2xx, errors, achieved rate, latency
//! percentiles in microseconds, and RSS start/peak/end in KiB when `--rss-pid` is given.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

/// Requests in flight beyond this count are not sent but counted as `shed`: a server that
/// cannot keep up shows it there and in the latency tail, not as unbounded client memory.
const MAX_IN_FLIGHT: usize = 4096;

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

async fn run(options: Options) -> Result<(), String> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build_http();
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).map_err(|error| error.to_string())?,
    ));
    let counts = Arc::new(Counts::default());
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let rss_start = options.rss_pid.and_then(rss_kib);
    let mut rss_peak = rss_start.unwrap_or(0);
    let mut next_rss_sample = Instant::now();
    // RSS at each tenth of the run (by requests when bounded by count, else by time): flat
    // memory shows as equal figures once every key has been seen.
    let mut rss_by_tenth = Vec::new();

    let interval = Duration::from_secs_f64(1.0 / options.rate);
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut sent = 0u64;
    let mut shed = 0u64;
    while sent + shed < options.max_requests {
        let scheduled = started + interval.mul_f64((sent + shed) as f64);
        if scheduled >= deadline {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        if let Some(pid) = options.rss_pid {
            if Instant::now() >= next_rss_sample {
                rss_peak = rss_peak.max(rss_kib(pid).unwrap_or(0));
                next_rss_sample += Duration::from_millis(250);
            }
            let by_count = (sent + shed) as f64 / options.max_requests as f64;
            let by_time = (scheduled - started).as_secs_f64() / options.duration.as_secs_f64();
            if by_count.max(by_time) * 10.0 >= (rss_by_tenth.len() + 1) as f64 {
                let rss = rss_kib(pid).unwrap_or(0);
                rss_peak = rss_peak.max(rss);
                rss_by_tenth.push(rss.to_string());
            }
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            shed += 1;
            continue;
        };
        let key = format!("Bearer sk-bench-{:06}", (sent + shed) % options.keys);
        let request = hyper::Request::post(options.url.clone())
            .header("content-type", "application/json")
            .header("authorization", key)
            .body(Full::new(options.body.clone()))
            .map_err(|error| error.to_string())?;
        let response = client.request(request);
        let histogram = histogram.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            let outcome = match response.await {
                Ok(response) => {
                    let success = response.status().is_success();
                    match response.into_body().collect().await {
                        Ok(_) => Some(success),
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            let latency = scheduled.elapsed();
            match outcome {
                Some(true) => counts.ok.fetch_add(1, Ordering::Relaxed),
                Some(false) => counts.non_2xx.fetch_add(1, Ordering::Relaxed),
                None => counts.errors.fetch_add(1, Ordering::Relaxed),
            };
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            histogram.lock().await.saturating_record(micros.max(1));
            drop(permit);
        });
        sent += 1;
    }
    // Wait for the stragglers, bounded so a hung server cannot hold the run open.
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        in_flight.acquire_many(MAX_IN_FLIGHT as u32),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = options.rss_pid.and_then(rss_kib);
    rss_peak = rss_peak.max(rss_end.unwrap_or(0));
    let histogram = histogram.lock().await;
    let micros = |quantile: f64| histogram.value_at_quantile(quantile);
    let mut line = format!(
        "sent={sent} shed={shed} ok={} non_2xx={} errors={} seconds={elapsed:.2} rate={:.1} \
         p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
        counts.ok.load(Ordering::Relaxed),
        counts.non_2xx.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
        sent as f64 / options.duration.as_secs_f64().min(elapsed),
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
