//! The learner's TensorBoard event files, read back two ways after a brief
//! run of the demo command: with the library that wrote them (`tboard`) and
//! with TensorBoard's own reader (`scripts/python/tb_scalars.py`, the virtualenv's
//! `tensorboard` package). Both must find every scalar of `logs.csv`, at its
//! row's frames, with the value the CSV shows.

use std::collections::HashMap;
use std::path::Path;

use tboard::tensorboard::event::What;
use tboard::tensorboard::summary::value::Value;

/// (tag, step) -> value, from the event files of `dir` read with `tboard`.
fn read_with_tboard(dir: &Path) -> HashMap<(String, i64), f32> {
    let mut scalars = HashMap::new();
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("the run's tb/ directory") {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents.") {
            continue;
        }
        files += 1;
        for event in tboard::SummaryReader::new(std::fs::File::open(&path).unwrap()) {
            let event = event.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let Some(What::Summary(summary)) = event.what else { continue };
            for v in summary.value {
                if let Some(Value::SimpleValue(x)) = v.value {
                    scalars.insert((v.tag, event.step), x);
                }
            }
        }
    }
    assert!(files > 0, "no event file in {}", dir.display());
    scalars
}

/// The same with TensorBoard's reader.
fn read_with_tensorboard(dir: &Path) -> HashMap<(String, i64), f32> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new(tests::python())
        .arg(root.join("scripts/python/tb_scalars.py"))
        .arg(dir)
        .output()
        .expect("the virtualenv's python (scripts/bootstrap.sh installs tensorboard)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: HashMap<String, Vec<(i64, f64)>> = serde_json::from_slice(&output.stdout).unwrap();
    json.into_iter()
        .flat_map(|(tag, points)| {
            points.into_iter().map(move |(s, v)| ((tag.clone(), s), v as f32))
        })
        .collect()
}

/// Every defined field of every row at (column, frames), nothing else.
fn check(rows: &[HashMap<String, String>], scalars: &HashMap<(String, i64), f32>, reader: &str) {
    let mut expected = 0;
    for row in rows {
        let step: i64 = row["frames"].parse().unwrap();
        for (column, field) in row {
            let key = (column.clone(), step);
            match field.parse::<f64>() {
                Ok(value) => {
                    expected += 1;
                    let got = scalars.get(&key).unwrap_or_else(|| {
                        panic!("{reader}: no {column} at frames {step} (logs.csv: {field})")
                    });
                    assert_eq!(*got, value as f32, "{reader}: {column} at frames {step}");
                }
                Err(_) => {
                    assert!(!scalars.contains_key(&key), "{reader}: {column} is empty in logs.csv")
                }
            }
        }
    }
    assert_eq!(scalars.len(), expected, "{reader}: scalars that logs.csv does not have");
}

#[test]
fn tensorboard_holds_every_scalar_of_logs_csv() {
    let run = tests::demo::run_demo_briefly("tensorboard", "3e4");
    let rows = run.logs();
    assert!(rows.len() >= 3, "too few updates to compare:\n{}", run.log("learner"));
    let dir = run.run_dir().join("tb");
    check(&rows, &read_with_tboard(&dir), "tboard");
    check(&rows, &read_with_tensorboard(&dir), "tensorboard");
}

#[test]
fn tensorboard_false_writes_no_event_file() {
    let run = tests::demo::run_demo_briefly_with(
        "no-tensorboard",
        "1e4",
        &["--", "--tensorboard", "false"],
    );
    assert!(!run.logs().is_empty(), "{}", run.log("learner"));
    assert!(!run.run_dir().join("tb").exists(), "tb/ written with --tensorboard false");
}
