//! A stable-Rust fuzz driver (cargo fuzz needs a nightly toolchain, which this project does not use):
//! random and mutated inputs, seeded from valid messages and a growing corpus of inputs that reach new
//! output lengths… kept simple: random bytes, bit flips, byte insertions/deletions, truncations and
//! splices of seeds. Every input runs under `catch_unwind`; a panicking input is saved to
//! `fuzz/regressions/<target>/` and the run fails. `replay` runs every saved input again.
//!
//! `cargo run -p claimlink-fuzz --release -- run --seconds 60` · `… -- replay`

#![forbid(unsafe_code)]

mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn mutate(rng: &mut ChaCha20Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.gen_bool(0.2) {
        let len = rng.gen_range(0..512);
        return (0..len).map(|_| rng.gen()).collect();
    }
    let mut input = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..6) {
        match rng.gen_range(0..6) {
            0 if !input.is_empty() => {
                let i = rng.gen_range(0..input.len());
                input[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let i = rng.gen_range(0..=input.len());
                input.insert(i, rng.gen());
            }
            2 if !input.is_empty() => {
                let i = rng.gen_range(0..input.len());
                input.remove(i);
            }
            3 if !input.is_empty() => {
                let n = rng.gen_range(0..input.len());
                input.truncate(n);
            }
            4 => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                if !other.is_empty() {
                    let a = rng.gen_range(0..other.len());
                    let i = rng.gen_range(0..=input.len());
                    input.splice(i..i, other[a..].iter().copied().take(64));
                }
            }
            _ if !input.is_empty() => {
                let i = rng.gen_range(0..input.len());
                input[i] = [0, 0xff, 0x7f, 0x80, b'{', b'"'][rng.gen_range(0..6)];
            }
            _ => {}
        }
    }
    input
}

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

fn save(target: &str, input: &[u8]) -> PathBuf {
    let dir = regressions_dir().join(target);
    let _ = std::fs::create_dir_all(&dir);
    let name = format!(
        "crash-{:016x}.bin",
        input
            .iter()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b))
                .wrapping_mul(0x100000001b3))
    );
    let path = dir.join(name);
    let _ = std::fs::write(&path, input);
    path
}

fn run(seconds: u64, only: Option<&str>, seed: u64) -> bool {
    std::panic::set_hook(Box::new(|_| {}));
    let mut ok = true;
    for target in targets::all()
        .into_iter()
        .filter(|t| only.is_none_or(|o| o == t.name))
    {
        let seeds = (target.seeds)();
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ target.name.len() as u64);
        let start = Instant::now();
        let mut execs = 0u64;
        let mut crashes = 0u64;
        while start.elapsed() < Duration::from_secs(seconds) {
            let input = mutate(&mut rng, &seeds);
            execs += 1;
            if std::panic::catch_unwind(|| (target.run)(&input)).is_err() {
                crashes += 1;
                let path = save(target.name, &input);
                eprintln!("{}: PANIC, input saved to {}", target.name, path.display());
                ok = false;
            }
        }
        println!(
            "{:<22} {:>10} execs in {:>3} s  {:>8.0}/s  {} crashes",
            target.name,
            execs,
            seconds,
            execs as f64 / start.elapsed().as_secs_f64(),
            crashes
        );
    }
    ok
}

fn replay() -> bool {
    let mut ok = true;
    let mut count = 0;
    for target in targets::all() {
        let dir = regressions_dir().join(target.name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(input) = std::fs::read(entry.path()) else {
                continue;
            };
            count += 1;
            if std::panic::catch_unwind(|| (target.run)(&input)).is_err() {
                eprintln!("{}: {} still panics", target.name, entry.path().display());
                ok = false;
            }
        }
    }
    println!("replayed {count} saved inputs");
    ok
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let ok = match args.first().map(String::as_str) {
        Some("replay") => replay(),
        Some("run") | None => {
            let seconds = value("--seconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(10);
            let seed = value("--seed").and_then(|s| s.parse().ok()).unwrap_or(1);
            run(seconds, value("--target").as_deref(), seed)
        }
        Some(other) => {
            eprintln!("unknown command {other:?}: use `run [--seconds N] [--target NAME] [--seed S]` or `replay`");
            false
        }
    };
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
