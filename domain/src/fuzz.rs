//! A mutation fuzzer over the spec pipeline: the example prod files, mutated at random, go
//! through load → validate → guardrails → semantic diff → policy → plan. Nothing may panic,
//! and every error must name a file and a position.
//!
//! A short run is a unit test (`scripts/test` runs it). A long one:
//! `TIERDECK_FUZZ_ITERS=1000000 cargo test -p tierdeck-domain --release fuzz -- --nocapture`
//! (`TIERDECK_FUZZ_SEED` picks another sequence). Stable Rust, no dependencies: a fixed PRNG,
//! so a failure names the iteration that reproduces it.

use std::collections::BTreeSet;

use crate::observed::ObservedState;
use crate::spec::fixtures::PROD;
use crate::spec::{load_environment, semantic_diff, EnvironmentSpec, SourceFile};

/// xorshift64*: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Pieces of YAML and of values that have broken parsers before.
const SNIPPETS: &[&str] = &[
    "&a ",
    "*a",
    "!!binary ",
    "!!str ",
    "? ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ": ",
    ", ",
    "\n",
    "\t",
    "#",
    "'",
    "\"",
    "|\n",
    ">\n",
    "---\n",
    "...\n",
    "~",
    "null",
    "true",
    "-1",
    "0",
    "4294967296",
    "99999999999999999999",
    "1e400",
    ".nan",
    "-.inf",
    "0x10",
    "é",
    "\u{FEFF}",
    "\u{0}",
    "%TAG ",
    "<<: *a\n",
    "min: ",
    "max: ",
    "desired: ",
    "cron: \"",
    "* * * * *",
    "timezone: Mars/Base",
    "objective: ",
    "window_days: ",
    "{{window}}",
    "_bucket{",
    "le=\"0.4\"",
    "0.0.0.0/0",
    "3306",
    "days: [",
    "start: \"25:61\"",
    "end: \"00:00\"",
    "required: ",
    "autoscaling_groups:\n",
];

/// One random edit of `text`.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len() + 1);
    match rng.below(6) {
        // Replace one character.
        0 if !chars.is_empty() => {
            let i = at.min(chars.len() - 1);
            let s = SNIPPETS[rng.below(SNIPPETS.len())];
            chars[i] = s.chars().next().unwrap_or(' ');
        }
        // Delete a run.
        1 if !chars.is_empty() => {
            let end = (at + 1 + rng.below(40)).min(chars.len());
            chars.drain(at.min(end)..end);
        }
        // Duplicate a line.
        2 => {
            let lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = rng.below(lines.len());
                let mut out: Vec<&str> = lines.clone();
                out.insert(i, lines[i]);
                return out.join("\n");
            }
        }
        // Swap two lines.
        3 => {
            let mut lines: Vec<&str> = text.lines().collect();
            if lines.len() > 1 {
                let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                lines.swap(i, j);
                return lines.join("\n");
            }
        }
        // Insert a snippet.
        _ => {
            let s = SNIPPETS[rng.below(SNIPPETS.len())];
            for (k, c) in s.chars().enumerate() {
                chars.insert(at + k, c);
            }
        }
    }
    chars.into_iter().collect()
}

fn example() -> Vec<SourceFile> {
    PROD.iter()
        .map(|(n, t)| SourceFile {
            path: format!("environments/prod/{n}"),
            text: (*t).to_owned(),
        })
        .collect()
}

/// Runs one mutated environment through the pipeline: `Ok(true)` when it still loads; `Err`
/// describes a broken promise.
fn one(base: &EnvironmentSpec, files: &[SourceFile]) -> Result<bool, String> {
    match load_environment("prod", files) {
        Ok(spec) => {
            let policy = crate::policy::judge(
                crate::policy::Applied::Spec {
                    commit: "base",
                    spec: base,
                },
                &spec,
                &crate::policy::Floor::default(),
            );
            let _ = crate::guardrails::check(&spec, &policy);
            let _ = crate::reachability::change_diff(Some(base), &spec);
            let edits = semantic_diff(Some(base), &spec);
            let desired: BTreeSet<String> = crate::change::groups_setting_desired(&edits);
            let _ = crate::plan::plan(&spec, &ObservedState::default(), &desired);
            let _ = crate::schedule::preview(&spec, chrono::Utc::now(), 24);
            let _ = crate::monitoring::service_panels(&spec.slos);
            Ok(true)
        }
        Err(errors) => {
            if errors.is_empty() {
                return Err("an error result with no errors".into());
            }
            match errors
                .iter()
                .find(|e| e.file.is_empty() || e.line == 0 || e.col == 0 || e.message.is_empty())
            {
                Some(e) => Err(format!("an error without a position: {e:?}")),
                None => Ok(false),
            }
        }
    }
}

#[test]
fn mutated_specs_never_panic_and_every_error_has_a_position() {
    let iters: u64 = std::env::var("TIERDECK_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let seed: u64 = std::env::var("TIERDECK_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let started = std::time::Instant::now();
    let base = load_environment("prod", &example()).expect("the example loads");
    let mut loaded = 0;
    for i in 0..iters {
        let mut rng = Rng(seed ^ (i.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut files = example();
        for _ in 0..1 + rng.below(4) {
            let f = rng.below(files.len());
            files[f].text = mutate(&mut rng, &files[f].text);
        }
        match std::panic::catch_unwind(|| one(&base, &files)) {
            Ok(Ok(valid)) => loaded += usize::from(valid),
            Ok(Err(why)) => panic!("iteration {i} (seed {seed}): {why}\n{files:#?}"),
            Err(_) => panic!("iteration {i} (seed {seed}) panicked on\n{files:#?}"),
        }
    }
    eprintln!(
        "fuzz: {iters} mutated environments ({loaded} still valid) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The sequence the short run and CI use.
const DEFAULT_SEED: u64 = 0x7_1DEC_2026;
