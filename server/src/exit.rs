//! Exit codes (DESIGN.md, "CLI"): 0 done, 1 a runtime failure (the database, AWS, the network),
//! 2 a usage or configuration error — something the command line, the environment or the
//! config file says wrong, which no retry will fix. Commands mark the latter by returning a
//! [`Usage`] error; everything else that fails exits 1.

/// Usage and configuration errors.
pub const USAGE: i32 = 2;
/// A runtime failure.
pub const FAILURE: i32 = 1;

/// An error the caller has to fix in the command line, environment or config file; its text
/// says what and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A [`Usage`] error as an `anyhow::Error` (the error type of commands and start-up).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// The exit code for an error that ended a command.
pub fn code(error: &anyhow::Error) -> i32 {
    if error.chain().any(|e| e.is::<Usage>()) { USAGE } else { FAILURE }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_2_even_under_context_and_others_1() {
        assert_eq!(code(&usage("--source: reserved")), USAGE);
        let wrapped = Err::<(), _>(usage("bad")).context("opening").unwrap_err();
        assert_eq!(code(&wrapped), USAGE);
        assert_eq!(code(&anyhow::anyhow!("connection refused")), FAILURE);
    }
}
