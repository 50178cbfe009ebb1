//! The Cinnabar server: networking, command table, command families, configuration.
//!
//! Map: [`connection`] (accept, read, parse, execute, write), [`command`] (the table built from
//! the JSON specs), [`context`] (what handlers see, errors, propagating shard guards),
//! [`families`] (one file per command family), [`config`] (options, redis.conf, CONFIG),
//! [`client`] (per-connection state and the registry), [`propagation`] (the ordered stream of
//! writes for AOF and replicas), [`server`] (shared state), [`expiry`] (active expiry),
//! [`blocking`] (clients blocked on keys), [`pubsub`] (channels, patterns, delivery),
//! [`notify`] (keyspace notifications), [`startup`] (turning a command line into a running
//! server), [`allocator`] (memory statistics), [`eviction`] (`maxmemory`), [`slowlog`],
//! [`latency`] (histograms, the latency monitor, per-command accounting), [`check`] (the
//! redis-check-aof / redis-check-rdb tools).

pub mod acl;
pub mod allocator;
pub mod aof;
pub mod arguments;
pub mod barrier;
pub mod blocking;
pub mod check;
pub mod client;
pub mod client_eviction;
pub mod command;
pub mod config;
pub mod connection;
pub mod context;
pub mod eviction;
pub mod expiry;
pub mod families;
pub mod key_extraction;
pub mod latency;
pub mod lazyfree;
pub mod loading;
pub mod monitor;
pub mod notify;
pub mod pause;
pub mod propagation;
pub mod pubsub;
pub mod rdb;
pub mod replica;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod slowlog;
pub mod snapshot;
pub mod startup;
pub mod stats;
#[cfg(test)]
pub mod testing;
pub mod tracking;
