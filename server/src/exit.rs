//! Exit codes (DESIGN.md, "CLI"): 0 done, 1 a runtime failure (the database, AWS, the network),
//! 2 a usage or configuration error — something the command line, the environment or the
//! config file says wrong, which no retry will fix; `sync` adds 3 (a guard refused the run) and
//! 4 (another run held the lock too long). Commands mark usage errors by returning a [`Usage`]
//! error; everything else that fails exits 1.

/// How a command ended, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done.
    Ok = 0,
    /// A runtime failure: the database, AWS or the network.
    Failure = 1,
    /// A usage or configuration error.
    Usage = 2,
    /// A safety guard refused the sync run.
    Refused = 3,
    /// Another sync run held the lock past `--wait`.
    Locked = 4,
}

impl ExitCode {
    /// The exit code for an error that ended a command.
    pub fn of(error: &anyhow::Error) -> ExitCode {
        if error.chain().any(|e| e.is::<Usage>()) { ExitCode::Usage } else { ExitCode::Failure }
    }

    /// A run report's code (`sync::engine::RunReport::exit_code`, one of the above); anything
    /// else is a failure.
    pub fn from_run(code: i32) -> ExitCode {
        match code {
            0 => ExitCode::Ok,
            2 => ExitCode::Usage,
            3 => ExitCode::Refused,
            4 => ExitCode::Locked,
            _ => ExitCode::Failure,
        }
    }

    /// 1 when `failed`, else 0 (`check`).
    pub fn failed_if(failed: bool) -> ExitCode {
        if failed { ExitCode::Failure } else { ExitCode::Ok }
    }
}

impl From<ExitCode> for i32 {
    fn from(code: ExitCode) -> i32 {
        code as i32
    }
}

/// An error the caller has to fix in the command line, environment or config file; its text
/// says what and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A [`Usage`] error as an `anyhow::Error` (the error type of commands and start-up).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_2_even_under_context_and_others_1() {
        assert_eq!(ExitCode::of(&usage("--source: reserved")), ExitCode::Usage);
        let wrapped = Err::<(), _>(usage("bad")).context("opening").unwrap_err();
        assert_eq!(ExitCode::of(&wrapped), ExitCode::Usage);
        assert_eq!(ExitCode::of(&anyhow::anyhow!("connection refused")), ExitCode::Failure);
    }

    #[test]
    fn the_codes_are_those_of_the_design() {
        let codes =
            [ExitCode::Ok, ExitCode::Failure, ExitCode::Usage, ExitCode::Refused, ExitCode::Locked];
        assert_eq!(codes.map(i32::from), [0, 1, 2, 3, 4]);
        for code in codes {
            assert_eq!(ExitCode::from_run(i32::from(code)), code);
        }
        assert_eq!(ExitCode::from_run(7), ExitCode::Failure);
    }
}
