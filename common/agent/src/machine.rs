//! What a process learns about the machine it runs on, and how a test keeps
//! that out of its results.
//!
//! Two settings are chosen by the machine: `--precision auto` (bfloat16 on a
//! CPU that computes it natively, [`crate::precision`]) and the learner's
//! `--device auto` (a GPU when one is visible). A test whose outcome depended
//! on either would pass on the machine it was written on and fail on another:
//! the actor-alignment test compared an actor started without `--precision`
//! against an fp32 replay, and failed on every CPU with AVX-512 BF16.
//!
//! Two environment variables, read here and nowhere else:
//!
//! - [`CPU_BF16_VAR`] (`AAA_CPU_BF16`) states the CPU's native bfloat16
//!   features instead of detecting them: `none`, or a comma list of
//!   `avx512_bf16` and `amx_bf16` (the names of /proc/cpuinfo). Tests of `auto`
//!   set it, so both of its resolutions run on every CPU.
//! - [`NO_AUTODETECT_VAR`] (`AAA_NO_AUTODETECT=1`, set by `scripts/test.sh`
//!   for the whole suite) turns every choice the machine would make into an
//!   error that names the flag to state: `--precision auto` on the CPU without
//!   `AAA_CPU_BF16`, and `--device auto`. A test that forgets to state its
//!   precision or device then fails on every machine, not only on some.

use std::fmt;

/// Environment variable that states the CPU's native bfloat16 features.
pub const CPU_BF16_VAR: &str = "AAA_CPU_BF16";
/// Environment variable that forbids choosing anything from the machine itself.
pub const NO_AUTODETECT_VAR: &str = "AAA_NO_AUTODETECT";

/// The native bfloat16 features the resolver knows, as /proc/cpuinfo names them.
pub const BF16_FEATURES: [&str; 2] = ["avx512_bf16", "amx_bf16"];

/// Why the machine could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MachineError {
    /// `AAA_NO_AUTODETECT` is set and a setting would have come from the machine.
    #[error(
        "{what} would depend on this machine, and {NO_AUTODETECT_VAR}=1 forbids that (scripts/test.sh \
         sets it so that no test's result depends on the machine it runs on): {fix}"
    )]
    Forbidden { what: &'static str, fix: &'static str },
    /// `AAA_CPU_BF16` holds something other than `none` or known feature names.
    #[error(
        "{CPU_BF16_VAR}={value:?}: expected `none` or a comma list of {} (unknown: {unknown})",
        BF16_FEATURES.join(", ")
    )]
    BadOverride { value: String, unknown: String },
}

/// Where a list of CPU features came from, for the reasons processes print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSource {
    /// Read from the CPU (CPUID and /proc/cpuinfo).
    Detected,
    /// Stated by `AAA_CPU_BF16`.
    Stated,
}

impl fmt::Display for FeatureSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureSource::Detected => f.write_str("detected"),
            FeatureSource::Stated => write!(f, "stated by {CPU_BF16_VAR}"),
        }
    }
}

/// True when `AAA_NO_AUTODETECT` is set to anything but empty or `0`.
pub fn autodetect_forbidden() -> bool {
    std::env::var_os(NO_AUTODETECT_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Fails with [`MachineError::Forbidden`] when `AAA_NO_AUTODETECT` is set:
/// call before anything chooses from the machine. `what` names the setting,
/// `fix` says which flag to state instead.
pub fn allow_autodetect(what: &'static str, fix: &'static str) -> Result<(), MachineError> {
    if autodetect_forbidden() {
        Err(MachineError::Forbidden { what, fix })
    } else {
        Ok(())
    }
}

/// Parses a value of `AAA_CPU_BF16`: `none` (or empty), or a comma list of
/// [`BF16_FEATURES`].
pub fn parse_bf16_features(value: &str) -> Result<Vec<&'static str>, MachineError> {
    let value_trimmed = value.trim();
    if value_trimmed.is_empty() || value_trimmed == "none" {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for name in value_trimmed.split(',').map(str::trim) {
        match BF16_FEATURES.iter().find(|f| **f == name) {
            Some(f) if !found.contains(f) => found.push(*f),
            Some(_) => {}
            None => unknown.push(name.to_owned()),
        }
    }
    if unknown.is_empty() {
        Ok(found)
    } else {
        Err(MachineError::BadOverride { value: value.to_owned(), unknown: unknown.join(", ") })
    }
}

/// The CPU's native bfloat16 features: stated by `AAA_CPU_BF16` when it is
/// set, otherwise detected (refused under `AAA_NO_AUTODETECT`).
pub fn cpu_bf16_features() -> Result<(Vec<&'static str>, FeatureSource), MachineError> {
    if let Some(value) = std::env::var_os(CPU_BF16_VAR) {
        let value = value.to_string_lossy();
        return Ok((parse_bf16_features(&value)?, FeatureSource::Stated));
    }
    allow_autodetect(
        "--precision auto on the CPU",
        "pass --precision fp32 or bf16, or set AAA_CPU_BF16 (none, avx512_bf16, amx_bf16) to \
         test auto itself",
    )?;
    Ok((detected_cpu_bf16_features(), FeatureSource::Detected))
}

/// The native bfloat16 features this CPU really has, as Linux names them:
/// `avx512_bf16` from CPUID, `amx_bf16` from /proc/cpuinfo.
pub fn detected_cpu_bf16_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512bf16") {
        found.push("avx512_bf16");
    }
    // AMX's detection is not stable in std; Linux lists it only where the
    // kernel supports AMX's state, which oneDNN needs too.
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
        if flags.split_whitespace().any(|f| f == "amx_bf16") {
            found.push("amx_bf16");
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU's flags as the kernel reports them, read independently of the
    /// detection (which uses CPUID for AVX-512 BF16).
    fn cpuinfo_has(flag: &str) -> bool {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
        flags.split_whitespace().any(|f| f == flag)
    }

    /// Detection agrees with /proc/cpuinfo, on a CPU with or without bfloat16.
    #[test]
    fn detection_agrees_with_proc_cpuinfo() {
        let detected = detected_cpu_bf16_features();
        for flag in BF16_FEATURES {
            assert_eq!(
                detected.contains(&flag),
                cpuinfo_has(flag),
                "{flag}: detected {detected:?}"
            );
        }
        eprintln!("this CPU's native bfloat16 features: {detected:?}");
    }

    #[test]
    fn stated_features_parse() {
        assert_eq!(parse_bf16_features("none").unwrap(), Vec::<&str>::new());
        assert_eq!(parse_bf16_features("").unwrap(), Vec::<&str>::new());
        assert_eq!(parse_bf16_features("avx512_bf16").unwrap(), vec!["avx512_bf16"]);
        assert_eq!(
            parse_bf16_features(" amx_bf16 , avx512_bf16,amx_bf16").unwrap(),
            vec!["amx_bf16", "avx512_bf16"]
        );
        let err = parse_bf16_features("avx512bf16,amx").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown: avx512bf16, amx"), "{text}");
        assert!(text.contains("avx512_bf16, amx_bf16"), "{text}");
    }
}
