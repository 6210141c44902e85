//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`, seeds and
//! every crash found) through the target bodies on stable, so a decoder bug
//! once fixed stays fixed without a fuzzer installed.

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_target_has_a_corpus_and_replays_it() {
    for (name, run) in tandem_fuzz::TARGETS {
        let dir = corpus_dir(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (every target has a committed corpus)",
                dir.display()
            )
        });
        let mut replayed = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            run(&bytes);
            replayed += 1;
        }
        assert!(replayed > 0, "{}: empty corpus", dir.display());
    }
}

#[test]
fn the_fuzz_binaries_are_the_targets() {
    // Each target has its cargo-fuzz binary, and no binary lacks a target.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    let mut bins: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    bins.sort();
    let mut names: Vec<String> = tandem_fuzz::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    names.sort();
    assert_eq!(bins, names);
}

#[test]
fn the_seeds_are_in_the_corpus() {
    let write = std::env::var_os("TANDEM_WRITE_SEEDS").is_some();
    for (target, name, bytes) in tandem_fuzz::seeds() {
        let path = corpus_dir(target).join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (write the seeds with TANDEM_WRITE_SEEDS=1)",
                path.display()
            )
        });
        assert_eq!(
            committed,
            bytes,
            "{} is stale (TANDEM_WRITE_SEEDS=1)",
            path.display()
        );
        // Seeds are inputs the decoders take: the targets see them whole.
        let run = tandem_fuzz::TARGETS
            .iter()
            .find(|(n, _)| *n == target)
            .unwrap()
            .1;
        run(&bytes);
    }
}
