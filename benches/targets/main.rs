//! `make bench`: measures the numbers DESIGN.md holds alertops to ("Numbers it is held to") and
//! exits non-zero when one is missed. Run it with `cargo bench --bench targets` (release build).
//!
//! 1. consumer throughput: decode + match + render of a realistic mix of SQS bodies, one thread;
//! 2. publish-to-Slack latency and per-channel post rate: the real consumer between the AWS
//!    emulator and a recording Slack stand-in;
//! 3. controller memory: 1,000 AlarmPolicies of 10 alarms as the controller holds them;
//! 4. no-op resync of one AlarmPolicy of 1,000 alarms: DescribeAlarms calls and writes;
//! 5. a fleet of 1,000 policies × 10 alarms through the controller's inventory, behind a proxy
//!    enforcing AWS's per-API quotas (scaled): creation time and throttles, resync calls.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) the binary only smoke-runs the
//! in-process measurements at a small scale and checks no target, so the test suite stays fast
//! and debug-build timings are never judged.

mod emulator;
mod fleet;
mod latency;
mod memory;
mod policies;
mod quota_proxy;
mod resync;
mod throughput;

use std::process::ExitCode;

use memory::CountingAllocator;

/// Counts live heap bytes, for the memory measurement.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

/// One measured number and its target.
pub struct Row {
    /// What was measured.
    pub name: String,
    /// The measurement, formatted.
    pub measured: String,
    /// The target, formatted.
    pub target: String,
    /// Whether the target is met; `None` for informational rows.
    pub met: Option<bool>,
}

impl Row {
    /// A row checked against its target.
    pub fn checked(
        name: impl Into<String>,
        measured: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Row {
        Row {
            name: name.into(),
            measured: measured.into(),
            target: target.into(),
            met: Some(met),
        }
    }

    /// A row shown for context, with no target.
    pub fn info(name: impl Into<String>, measured: impl Into<String>) -> Row {
        Row {
            name: name.into(),
            measured: measured.into(),
            target: String::new(),
            met: None,
        }
    }
}

fn main() -> ExitCode {
    // Cargo passes `--bench` to bench targets under `cargo bench`, never under `cargo test`.
    let bench = std::env::args().any(|arg| arg == "--bench");
    if !bench {
        return smoke();
    }
    let mut rows = Vec::new();
    if selected("throughput") {
        eprintln!("[1/5] consumer throughput (one thread)…");
        rows.extend(throughput::measure(throughput::Scale::full()));
    }
    if selected("memory") {
        eprintln!("[2/5] controller memory (1,000 policies × 10 alarms)…");
        rows.extend(memory::measure(&ALLOCATOR, memory::Scale::full()));
        eprintln!("[2/5] controller memory (10,000 policies × 10 alarms, stripped cache)…");
        rows.extend(memory::measure(&ALLOCATOR, memory::Scale::fleet()));
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let emulated = runtime.block_on(async {
        let moto = emulator::Moto::start().await?;
        eprintln!(
            "[3/5] publish-to-Slack latency (AWS emulator at {})…",
            moto.endpoint()
        );
        let mut rows = Vec::new();
        // The fleet runs first, in an account holding only its own topics, so that its resync
        // row counts the pages of exactly its 1,000 topics.
        if selected("fleet") {
            let scale = fleet::Scale::full();
            eprintln!(
                "[5/5] fleet of {} policies × {} alarms behind AWS's quotas × {}…",
                scale.policies, scale.alarms, scale.factor
            );
            rows.extend(fleet::measure(&moto, scale).await?);
        }
        if selected("latency") {
            rows.extend(latency::measure(&moto, latency::Grouping::NoWait).await?);
            eprintln!("[3/5] publish-to-Slack latency with the route defaults (group wait)…");
            rows.extend(latency::measure(&moto, latency::Grouping::RouteDefaults).await?);
        }
        if selected("resync") {
            eprintln!("[4/5] no-op resync of 1,000 alarms…");
            rows.extend(resync::measure(&moto).await?);
        }
        Ok::<_, String>(rows)
    });
    match emulated {
        Ok(more) => rows.extend(more),
        Err(error) => rows.push(Row::checked(
            "emulator-backed benchmarks",
            format!("did not run: {error}"),
            "run",
            false,
        )),
    }
    print_table(&rows);
    let missed = rows.iter().filter(|r| r.met == Some(false)).count();
    if missed == 0 {
        println!("\nevery target met");
        ExitCode::SUCCESS
    } else {
        println!("\n{missed} target(s) missed");
        ExitCode::FAILURE
    }
}

/// Whether a measurement runs: all of them, or those named in `ALERTOPS_BENCH_ONLY`
/// (comma-separated: throughput, memory, latency, resync, fleet) to rerun one.
fn selected(measurement: &str) -> bool {
    match std::env::var("ALERTOPS_BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only.split(',').any(|m| m.trim() == measurement),
        _ => true,
    }
}

/// The `cargo test` run: the in-process measurements at a small scale, their targets unchecked
/// (debug builds are slow), failing only if a measurement itself breaks.
fn smoke() -> ExitCode {
    let mut rows = throughput::measure(throughput::Scale::smoke());
    rows.extend(memory::measure(&ALLOCATOR, memory::Scale::smoke()));
    for row in &mut rows {
        row.met = None;
    }
    print_table(&rows);
    println!("(smoke run: `make bench` measures against the targets)");
    ExitCode::SUCCESS
}

fn print_table(rows: &[Row]) {
    let width = |f: fn(&Row) -> &str, title: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let name_w = width(|r| &r.name, "benchmark");
    let measured_w = width(|r| &r.measured, "measured");
    let target_w = width(|r| &r.target, "target");
    println!();
    println!(
        "{:<name_w$}  {:>measured_w$}  {:<target_w$}  result",
        "benchmark", "measured", "target"
    );
    println!(
        "{}  {}  {}  ------",
        "-".repeat(name_w),
        "-".repeat(measured_w),
        "-".repeat(target_w)
    );
    for row in rows {
        let verdict = match row.met {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<name_w$}  {:>measured_w$}  {:<target_w$}  {verdict}",
            row.name, row.measured, row.target
        );
    }
}
