//! In-process test support for command families: a server with a recording propagation sink
//! and one client, so unit tests run commands through `connection::execute` and check both the
//! raw reply and the exact propagated stream.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::client::{Client, ClientShared};
use crate::command::CommandTable;
use crate::config::Config;
use crate::propagation::RecordingSink;
use crate::server::Server;

pub struct Harness {
    pub server: Server,
    pub client: Client,
    recorded: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
}

impl Harness {
    /// A harness whose recorded stream starts in database 0 (no leading SELECT).
    pub fn new() -> Harness {
        Harness::build(Some(0))
    }

    /// A harness whose recorded stream shows every SELECT, the first one included.
    pub fn with_selects() -> Harness {
        Harness::build(None)
    }

    fn build(last_database: Option<usize>) -> Harness {
        let mut commands = CommandTable::from_specs();
        crate::families::register_all(&mut commands);
        commands.retain_implemented();
        let server = Server::new(Config::default(), commands, 1);
        let recorded = Arc::new(Mutex::new(Vec::new()));
        server.propagation.attach(Box::new(RecordingSink {
            buffer: recorded.clone(),
            last_database,
            bytes_max: usize::MAX,
            bytes: 0,
        }));
        let address = "127.0.0.1:1".parse().expect("an address");
        let shared = Arc::new(ClientShared::new(1, address, address, -1, 0));
        let user = server.acl.default_user();
        Harness {
            server,
            client: Client::new(shared, true, user),
            recorded,
        }
    }

    /// Runs a command given as words separated by single spaces (so `"SETRANGE k 5 "` passes
    /// an empty last argument); returns its raw reply.
    pub fn run(&mut self, line: &str) -> String {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let mut output = Vec::new();
        crate::connection::execute(&self.server, &mut self.client, &args, &mut output);
        String::from_utf8_lossy(&output).into_owned()
    }

    /// The writes propagated since the last call, one space-joined command each.
    pub fn propagated(&mut self) -> Vec<String> {
        std::mem::take(&mut *self.recorded.lock())
            .into_iter()
            .map(|args| {
                args.iter()
                    .map(|arg| String::from_utf8_lossy(arg).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}
