//! The check tools, redis-check-aof and redis-check-rdb, inside `cinnabar-server`.
//!
//! # Model
//!
//! As Redis's binary does, the program's name chooses the tool: run through a link or copy whose
//! file name contains `check-aof` ([`aof`]) or `check-rdb` ([`rdb`]), `cinnabar-server` is that
//! tool (Valkey's test suite runs `src/valkey-check-aof`). The same tools are also the
//! subcommands `cinnabar-server check-aof ...` and `cinnabar-server check-rdb ...`; no other
//! first argument is a subcommand (it is a configuration file's path).
//!
//! Each tool reads whole files, prints what Redis's prints on stdout (usage errors as Redis
//! does), and returns the exit code Redis's would exit with. They share no state with the
//! server; [`rdb::report`] is also what the server can log when an RDB does not load.

pub mod aof;
pub mod rdb;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

/// Which checker a command line runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Aof,
    Rdb,
}

/// A command line that runs a checker: the tool, its name for the usage line, its arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    pub tool: Tool,
    pub program: String,
    pub args: Vec<OsString>,
}

impl Invocation {
    /// The checker `args` (the whole command line, program first) asks for, if any.
    pub fn from_args(args: &[OsString]) -> Option<Invocation> {
        let program = args.first()?;
        let program_text = program.to_string_lossy();
        let file_name = Path::new(program)
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        let named = if file_name.contains("check-aof") {
            Some(Tool::Aof)
        } else if file_name.contains("check-rdb") {
            Some(Tool::Rdb)
        } else {
            None
        };
        if let Some(tool) = named {
            return Some(Invocation {
                tool,
                program: program_text.into_owned(),
                args: args[1..].to_vec(),
            });
        }
        let (tool, word) = match args.get(1)?.to_str()? {
            "check-aof" => (Tool::Aof, "check-aof"),
            "check-rdb" => (Tool::Rdb, "check-rdb"),
            _ => return None,
        };
        Some(Invocation {
            tool,
            program: format!("{program_text} {word}"),
            args: args[2..].to_vec(),
        })
    }

    /// Runs the tool on the process's stdin and stdout; returns the exit code.
    pub fn run(&self) -> i32 {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let code = match self.tool {
            Tool::Aof => aof::main(
                &self.program,
                &self.args,
                &mut out,
                &mut std::io::stdin().lock(),
            ),
            Tool::Rdb => rdb::main(&self.program, &self.args, &mut out),
        };
        let _ = out.flush();
        code
    }
}

/// Milliseconds since the epoch (the clock keys' expiries are compared with).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// A C string's bytes: up to the first NUL.
fn c_string(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(bytes.len());
    &bytes[..end]
}

/// What C's `strtol(text, &end, 10)` finds in a NUL-terminated buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parsed {
    /// The value, clamped to the i64 range on overflow (0 without digits).
    value: i64,
    /// The index where parsing stopped: just after the digits, or 0 when there were none.
    end: usize,
    /// `errno` would be ERANGE.
    overflow: bool,
}

/// C's `strtol` in base 10: blanks, an optional sign, then digits; a NUL ends the text.
fn c_strtol(text: &[u8]) -> Parsed {
    let byte = |index: usize| text.get(index).copied().unwrap_or(0);
    let mut index = 0;
    while matches!(byte(index), b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        index += 1;
    }
    let negative = byte(index) == b'-';
    if matches!(byte(index), b'+' | b'-') {
        index += 1;
    }
    let digits_start = index;
    let mut value: i64 = 0;
    let mut overflow = false;
    while byte(index).is_ascii_digit() {
        let digit = (byte(index) - b'0') as i64;
        let next = value.checked_mul(10).and_then(|tens| {
            if negative {
                tens.checked_sub(digit)
            } else {
                tens.checked_add(digit)
            }
        });
        match next {
            Some(next) => value = next,
            None => overflow = true,
        }
        index += 1;
    }
    if index == digits_start {
        return Parsed {
            value: 0,
            end: 0,
            overflow: false,
        };
    }
    if overflow {
        value = if negative { i64::MIN } else { i64::MAX };
    }
    Parsed {
        value,
        end: index,
        overflow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(words: &[&str]) -> Option<Invocation> {
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        Invocation::from_args(&args)
    }

    #[test]
    fn the_program_name_or_the_subcommand_chooses_the_tool() {
        let by_name = invocation(&["src/valkey-check-aof", "--fix", "a.aof"]).expect("tool");
        assert_eq!(by_name.tool, Tool::Aof);
        assert_eq!(by_name.program, "src/valkey-check-aof");
        assert_eq!(by_name.args, [OsString::from("--fix"), "a.aof".into()]);
        let by_name = invocation(&["/usr/bin/redis-check-rdb", "x.rdb"]).expect("tool");
        assert_eq!(by_name.tool, Tool::Rdb);
        let sub = invocation(&["/bin/cinnabar-server", "check-rdb", "x.rdb"]).expect("tool");
        assert_eq!(sub.tool, Tool::Rdb);
        assert_eq!(sub.program, "/bin/cinnabar-server check-rdb");
        assert_eq!(sub.args, [OsString::from("x.rdb")]);
        assert_eq!(invocation(&["cinnabar-server", "redis.conf"]), None);
        assert_eq!(invocation(&["cinnabar-server", "CHECK-AOF"]), None);
        assert_eq!(invocation(&["cinnabar-server"]), None);
        // Only the file name counts: a directory named like a tool does not.
        assert_eq!(invocation(&["/tmp/check-aof/cinnabar-server"]), None);
    }

    #[test]
    fn strtol_as_c() {
        let parse = |text: &str| c_strtol(text.as_bytes());
        assert_eq!(
            parse("12\r\n"),
            Parsed {
                value: 12,
                end: 2,
                overflow: false
            }
        );
        assert_eq!(parse(" -7x").value, -7);
        assert_eq!(parse(" -7x").end, 3);
        assert_eq!(parse("\r\n").end, 0);
        assert_eq!(parse("+").end, 0);
        assert_eq!(parse("").value, 0);
        assert_eq!(parse("99999999999999999999").value, i64::MAX);
        assert!(parse("99999999999999999999").overflow);
        assert_eq!(parse("-99999999999999999999").value, i64::MIN);
        assert_eq!(c_strtol(b"4\x005").end, 1);
    }
}
