//! `loadgen`: an open-loop HTTP load generator for ratelab's server benchmarks. It sends POSTs
//! to loopback URLs at a fixed rate for a bounded time and request count, and records each
//! request's latency in an HdrHistogram.
//!
//! It has to share two cores with the server it measures, so it is built to be cheap:
//! - One thread. Requests are released at their due times by a timerfd ticking every
//!   [`TICK`] inside the event loop: tokio's own timer has millisecond resolution (it sent each
//!   millisecond's requests as one burst), and a pacer thread cost a context switch per tick.
//!   (timerfd is Linux's; elsewhere loadgen falls back to tokio's timer and its bursts.)
//! - HTTP/1.1 written as prepared bytes and read with `httparse`, as wrk does: a full client
//!   built a header map for every response, which cost more than the server's own parsing.
//!
//! Latency counts from the request's *scheduled* time when it goes out late because every
//! connection was busy (so a stalled server cannot hide its queue, the coordinated-omission
//! trap of closed-loop tools like wrk), and from its release otherwise. Requests go over a
//! fixed set of keep-alive connections, as wrk2 does.
//!
//! Given several `--url`s, it takes turns: for `--slice-ms` the load goes to the first URL, then
//! for as long to the next, and so on for the whole run, with a histogram per URL. Targets
//! compared that way share the calm and the noisy stretches of a shared machine, which
//! back-to-back runs do not.
//!
//! Usage: `loadgen --url http://127.0.0.1:PORT/v1/chat/completions [--url ...] --body-file
//! req.json --rate 5000 --duration-secs 10 [--slice-ms 250] [--max-requests N] [--keys N]
//! [--connections 32] [--rss-pid PID]`
//!
//! Prints one line of `name=value` pairs per URL, in the order given: the URL's index, requests
//! done, ok, non_2xx, errors, the achieved rate over the time that URL had the load, latency
//! percentiles in microseconds, and RSS in KiB (start, peak, end, and at each tenth of the run)
//! when `--rss-pid` is given.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

mod ticker;

use ticker::Ticker;

/// How often the pacer wakes; each wake releases every request due before the next one.
const TICK: Duration = Duration::from_micros(100);

/// Fixed-rate POST load against loopback URLs.
#[derive(clap::Parser)]
struct Arguments {
    /// A URL to POST to, on 127.0.0.1; repeat to take turns between several (see --slice-ms).
    #[arg(long, required = true)]
    url: Vec<String>,
    /// The JSON request body.
    #[arg(long)]
    body_file: String,
    /// Requests per second, at most 1e6.
    #[arg(long)]
    rate: f64,
    /// How long to send for, at most 600.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// With several URLs, how long each has the load before the next takes over.
    #[arg(long, default_value_t = 250)]
    slice_ms: u64,
    /// Stop after this many requests even if time is left.
    #[arg(long, default_value_t = u64::MAX)]
    max_requests: u64,
    /// Rotate over this many keys, `sk-bench-000000` onwards.
    #[arg(long, default_value_t = 1)]
    keys: u64,
    /// Keep-alive connections to each URL, as wrk's `-c`.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Sample this process's resident memory during the run.
    #[arg(long)]
    rss_pid: Option<u32>,
}

/// One URL under load: where to connect and what to send.
struct Target {
    /// `host:port`, for connecting and for the `host` header.
    authority: String,
    path: String,
}

struct Options {
    targets: Vec<Target>,
    body: Vec<u8>,
    interval: Duration,
    duration: Duration,
    slice: Duration,
    max_requests: u64,
    keys: u64,
    connections: u32,
    rss_pid: Option<u32>,
}

fn target(url: &str) -> Result<Target, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|error| format!("--url {url}: {error}"))?;
    if uri.scheme_str() != Some("http") || uri.host() != Some("127.0.0.1") {
        return Err(format!(
            "--url {url}: not an http URL on 127.0.0.1; loadgen only loads loopback"
        ));
    }
    let authority = uri
        .authority()
        .map(|found| found.as_str().to_owned())
        .unwrap_or_default();
    let path = uri
        .path_and_query()
        .map_or("/", |found| found.as_str())
        .to_owned();
    Ok(Target { authority, path })
}

fn options() -> Result<Options, String> {
    let arguments = <Arguments as clap::Parser>::parse();
    let targets = arguments
        .url
        .iter()
        .map(|url| target(url))
        .collect::<Result<Vec<_>, _>>()?;
    let path = arguments.body_file;
    let body = std::fs::read(&path).map_err(|error| format!("--body-file {path}: {error}"))?;
    let (rate, duration_secs) = (arguments.rate, arguments.duration_secs);
    if !(rate > 0.0 && rate <= 1e6 && duration_secs > 0.0 && duration_secs <= 600.0) {
        return Err("--rate must be in (0, 1e6] and --duration-secs in (0, 600]".to_owned());
    }
    if arguments.slice_ms == 0 {
        return Err("--slice-ms must be at least 1".to_owned());
    }
    Ok(Options {
        targets,
        body,
        interval: Duration::from_secs_f64(1.0 / rate),
        duration: Duration::from_secs_f64(duration_secs),
        slice: Duration::from_millis(arguments.slice_ms),
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

fn main() -> Result<(), String> {
    let options = options()?;
    // One thread: the generator should take one core at most, leaving the rest to the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("tokio runtime: {error}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(options))
}

/// What a URL's connections share: the released requests, the tallies and the histogram.
struct Lane {
    /// One permit per request the pacer has released to this URL and no connection has
    /// claimed yet, plus one per connection at the end to tell it to stop.
    released: Semaphore,
    /// Due times of the released requests, oldest first, with their indices.
    queue: RefCell<std::collections::VecDeque<(u64, Instant)>>,
    tally: RefCell<Tally>,
}

struct Tally {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    histogram: Histogram<u64>,
    /// Time this URL had the load.
    active: Duration,
}

impl Lane {
    fn record(&self, outcome: Option<bool>, latency: Duration) {
        let mut tally = self.tally.borrow_mut();
        match outcome {
            Some(true) => tally.ok += 1,
            Some(false) => tally.non_2xx += 1,
            None => tally.errors += 1,
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        tally.histogram.saturating_record(micros.max(1));
    }
}

/// One keep-alive connection sending due requests one after another, as wrk2 does: when every
/// connection is busy, due requests wait, and that wait counts in their latency.
async fn connection(options: Rc<Options>, lane: Rc<Lane>, target: usize) {
    let Target { authority, path } = &options.targets[target];
    let mut stream: Option<TcpStream> = None;
    let mut request = Vec::with_capacity(options.body.len() + 256);
    let mut response = Vec::with_capacity(16 * 1024);
    loop {
        // A request released while this connection was busy is overdue: it counts from its
        // due time, the coordinated-omission correction. One this connection waited for counts
        // from when the pacer released it, so the pacer's own lateness is not the server's.
        let waited = match lane.released.try_acquire() {
            Ok(permit) => {
                permit.forget();
                false
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => match lane.released.acquire().await {
                Ok(permit) => {
                    permit.forget();
                    true
                }
                Err(_) => break,
            },
            Err(tokio::sync::TryAcquireError::Closed) => break,
        };
        let Some((index, due)) = lane.queue.borrow_mut().pop_front() else {
            // A stop permit: the pacer is done and nothing is left to send.
            break;
        };
        let now = Instant::now();
        // The pacer releases a tick's requests a little ahead; such a request counts from
        // when it goes.
        let start = if waited { now } else { due.min(now) };
        if stream.is_none() {
            stream = connect(authority).await;
        }
        let Some(live) = stream.as_mut() else {
            lane.record(None, start.elapsed());
            continue;
        };
        request.clear();
        write_request(
            &mut request,
            path,
            authority,
            index % options.keys,
            &options.body,
        );
        let outcome = exchange(live, &request, &mut response).await;
        if outcome.is_none() {
            // The connection may be broken; the next request opens a fresh one.
            stream = None;
        }
        lane.record(outcome, start.elapsed());
    }
}

/// The request's bytes: a POST of `body` with key `sk-bench-{key:06}`.
fn write_request(into: &mut Vec<u8>, path: &str, authority: &str, key: u64, body: &[u8]) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(
        into,
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         authorization: Bearer sk-bench-{key:06}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    into.extend_from_slice(body);
}

async fn connect(authority: &str) -> Option<TcpStream> {
    let stream = TcpStream::connect(authority).await.ok()?;
    stream.set_nodelay(true).ok()?;
    Some(stream)
}

/// Sends one request and reads the whole response: `Some(true)` for a 2xx, `Some(false)` for
/// another status, `None` on an I/O error or a response it cannot frame (only `content-length`
/// bodies are read, which is what ratelab's non-streaming endpoints send).
async fn exchange<S>(stream: &mut S, request: &[u8], response: &mut Vec<u8>) -> Option<bool>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request).await.ok()?;
    response.clear();
    loop {
        if stream.read_buf(response).await.ok()? == 0 {
            return None;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        let head = match parsed.parse(response).ok()? {
            httparse::Status::Complete(head) => head,
            httparse::Status::Partial => continue,
        };
        let length = parsed
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case("content-length"))
            .and_then(|header| {
                std::str::from_utf8(header.value)
                    .ok()?
                    .parse::<usize>()
                    .ok()
            })?;
        let success = (200..300).contains(&parsed.code?);
        let total = head + length;
        while response.len() < total {
            response.reserve(total - response.len());
            if stream.read_buf(response).await.ok()? == 0 {
                return None;
            }
        }
        return Some(success);
    }
}

/// Releases each request at its due time to the URL whose turn it is: each tick of the
/// [`Ticker`] releases the requests due before the next.
async fn pace(options: Rc<Options>, lanes: Rc<[Rc<Lane>]>, started: Instant) -> Result<(), String> {
    let mut ticker = Ticker::new()?;
    let deadline = started + options.duration;
    let mut index: u64 = 0;
    'run: loop {
        let horizon = Instant::now() + TICK;
        while index < options.max_requests {
            let due = started + options.interval.mul_f64(index as f64);
            if due >= deadline {
                break 'run;
            }
            if due > horizon {
                break;
            }
            let turn = ((due - started).as_nanos() / options.slice.as_nanos()) as usize;
            let lane = &lanes[turn % lanes.len()];
            lane.queue.borrow_mut().push_back((index, due));
            lane.released.add_permits(1);
            index += 1;
        }
        if index >= options.max_requests {
            break;
        }
        // A late or missed tick is caught up above, which releases everything due by now.
        ticker.tick().await?;
    }
    // One more permit per connection: each wakes, finds no request left, and ends.
    for lane in lanes.iter() {
        lane.released.add_permits(options.connections as usize);
    }
    Ok(())
}

async fn run(options: Options) -> Result<(), String> {
    let options = Rc::new(options);
    let rss_pid = options.rss_pid;
    let started = Instant::now();
    let lanes: Rc<[Rc<Lane>]> = options
        .targets
        .iter()
        .map(|_| {
            Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).map(|histogram| {
                Rc::new(Lane {
                    released: Semaphore::new(0),
                    queue: RefCell::default(),
                    tally: RefCell::new(Tally {
                        ok: 0,
                        non_2xx: 0,
                        errors: 0,
                        histogram,
                        active: Duration::ZERO,
                    }),
                })
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|error| error.to_string())?;
    let rss_start = rss_pid.and_then(rss_kib);
    let pacer = tokio::task::spawn_local(pace(options.clone(), lanes.clone(), started));
    let mut tasks = Vec::new();
    for (target, lane) in lanes.iter().enumerate() {
        for _ in 0..options.connections {
            tasks.push(tokio::task::spawn_local(connection(
                options.clone(),
                lane.clone(),
                target,
            )));
        }
    }
    // RSS every tenth of the run's time: flat memory shows as equal figures once every key has
    // been seen.
    let mut rss_by_tenth = Vec::new();
    let mut rss_peak = rss_start.unwrap_or(0);
    if let Some(pid) = rss_pid {
        for tenth in 1..=10u32 {
            tokio::time::sleep_until(started + options.duration * tenth / 10).await;
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
    let grace = started + options.duration + Duration::from_secs(30);
    match tokio::time::timeout_at(grace, pacer).await {
        Ok(Ok(result)) => result?,
        Ok(Err(error)) => return Err(format!("pacer: {error}")),
        Err(_) => return Err("pacer: did not finish within 30 s of the deadline".to_owned()),
    }
    for task in tasks {
        let _ = tokio::time::timeout_at(grace, task).await;
    }
    let elapsed = started.elapsed();
    let rss_end = rss_pid.and_then(rss_kib);
    rss_peak = rss_peak.max(rss_end.unwrap_or(0));
    // Each URL had the load for its share of the slices; a single URL, for the whole run.
    let turns = lanes.len() as u32;
    for (turn, lane) in lanes.iter().enumerate() {
        let mut tally = lane.tally.borrow_mut();
        if turns == 1 {
            tally.active = elapsed;
            continue;
        }
        let mut at = options.slice * turn as u32;
        while at < options.duration {
            tally.active += options.slice.min(options.duration - at);
            at += options.slice * turns;
        }
    }
    for (target, lane) in lanes.iter().enumerate() {
        let tally = lane.tally.borrow();
        let done = tally.ok + tally.non_2xx + tally.errors;
        let micros = |quantile: f64| tally.histogram.value_at_quantile(quantile);
        let mut line = format!(
            "target={target} requests={done} ok={} non_2xx={} errors={} seconds={:.2} \
             rate={:.1} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
            tally.ok,
            tally.non_2xx,
            tally.errors,
            tally.active.as_secs_f64(),
            done as f64 / tally.active.as_secs_f64(),
            micros(0.5),
            micros(0.9),
            micros(0.99),
            micros(0.999),
            tally.histogram.max(),
        );
        if let (Some(start), Some(end)) = (rss_start, rss_end) {
            line.push_str(&format!(
                " rss_start_kib={start} rss_peak_kib={rss_peak} rss_end_kib={end} \
                 rss_by_tenth_kib={}",
                rss_by_tenth.join(",")
            ));
        }
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Runs `exchange` against a peer that reads the request and then sends `reply` in the
    /// given pieces, and returns the outcome and the request bytes the peer saw.
    async fn against(reply: &[&[u8]]) -> (Option<bool>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let mut request = Vec::new();
        write_request(
            &mut request,
            "/v1/chat/completions",
            "127.0.0.1:9",
            7,
            b"{}",
        );
        let pieces: Vec<Vec<u8>> = reply.iter().map(|piece| piece.to_vec()).collect();
        let length = request.len();
        let peer = tokio::spawn(async move {
            let mut seen = vec![0; length];
            server.read_exact(&mut seen).await.ok()?;
            for piece in pieces {
                server.write_all(&piece).await.ok()?;
                tokio::task::yield_now().await;
            }
            Some(seen)
        });
        let mut response = Vec::new();
        let outcome = exchange(&mut client, &request, &mut response).await;
        drop(client);
        let seen = peer.await.ok().flatten().unwrap_or_default();
        (outcome, seen)
    }

    #[tokio::test]
    async fn the_request_is_a_post_with_the_key_and_body() {
        let (_, seen) = against(&[b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]).await;
        assert_eq!(
            String::from_utf8_lossy(&seen),
            "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\
             content-type: application/json\r\nauthorization: Bearer sk-bench-000007\r\n\
             content-length: 2\r\n\r\n{}"
        );
    }

    #[tokio::test]
    async fn a_response_split_across_reads_is_read_whole() {
        let (outcome, _) = against(&[
            b"HTTP/1.1 200 OK\r\nContent-Len",
            b"gth: 11\r\n\r\nhello",
            b" world",
        ])
        .await;
        assert_eq!(outcome, Some(true));
    }

    #[tokio::test]
    async fn a_429_is_a_completed_non_2xx() {
        let body = br#"{"error":{}}"#;
        let head = format!(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let (outcome, _) = against(&[head.as_bytes(), body]).await;
        assert_eq!(outcome, Some(false));
    }

    #[tokio::test]
    async fn a_body_cut_short_or_without_a_length_is_an_error() {
        let cut = against(&[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"]).await;
        assert_eq!(cut.0, None);
        let chunked =
            against(&[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"]).await;
        assert_eq!(chunked.0, None);
        let garbage = against(&[b"not http at all\r\n\r\n"]).await;
        assert_eq!(garbage.0, None);
    }
}
