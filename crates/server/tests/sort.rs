//! SORT and SORT_RO as clients see them, with Redis's replies (checked against redis-server):
//! numeric and ALPHA sorting, LIMIT, BY patterns (hash fields too), BY nosort, GET, STORE.

mod common;

use common::*;

const SYNTAX: &str = "ERR syntax error";
const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn sorts_lists_numerically_and_alphabetically() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH l 3 1 2 10 1.5"), int(5));
    assert_eq!(client.cmd("SORT l"), bulks(&["1", "1.5", "2", "3", "10"]));
    assert_eq!(
        client.cmd("SORT l DESC"),
        bulks(&["10", "3", "2", "1.5", "1"])
    );
    assert_eq!(
        client.cmd("SORT l ALPHA"),
        bulks(&["1", "1.5", "10", "2", "3"])
    );
    assert_eq!(client.cmd("SORT l LIMIT 1 2"), bulks(&["1.5", "2"]));
    assert_eq!(
        client.cmd("SORT l LIMIT 1 2 DESC ALPHA"),
        bulks(&["2", "10"])
    );
    assert_eq!(
        client.cmd("SORT l LIMIT -5 100"),
        bulks(&["1", "1.5", "2", "3", "10"])
    );
    assert_eq!(client.cmd("SORT l LIMIT 10 2"), array(vec![]));
    assert_eq!(client.cmd("SORT l LIMIT 0 0"), array(vec![]));
    assert_eq!(
        client.cmd("SORT l LIMIT x 1"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(client.cmd("SORT l LIMIT 1"), error(SYNTAX));
    assert_eq!(client.cmd("SORT l FOO"), error(SYNTAX));
    assert_eq!(client.cmd("SORT missing"), array(vec![]));
    assert_eq!(client.cmd("RPUSH bad a b"), int(2));
    assert_eq!(
        client.cmd("SORT bad"),
        error("ERR One or more scores can't be converted into double")
    );
    assert_eq!(client.cmd("SORT bad ALPHA"), bulks(&["a", "b"]));
    assert_eq!(client.cmd("SET s x"), ok());
    assert_eq!(client.cmd("SORT s"), error(WRONG_TYPE));
    assert_eq!(
        client.cmd("SORT"),
        error("ERR wrong number of arguments for 'sort' command")
    );
}

#[test]
fn by_and_get_patterns() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH l 3 1 2"), int(3));
    assert_eq!(client.cmd("MSET w_3 30 w_1 10 w_2 5"), ok());
    assert_eq!(client.cmd("SORT l BY w_*"), bulks(&["2", "1", "3"]));
    assert_eq!(
        client.cmd("SORT l BY w_* DESC GET # GET w_*"),
        bulks(&["3", "30", "1", "10", "2", "5"])
    );
    assert_eq!(
        client.cmd("SORT l GET o_* GET #"),
        array(vec![
            Reply::Nil,
            bulk("1"),
            Reply::Nil,
            bulk("2"),
            Reply::Nil,
            bulk("3")
        ])
    );
    assert_eq!(client.cmd("HSET h_1 f c"), int(1));
    assert_eq!(client.cmd("HSET h_2 f b"), int(1));
    assert_eq!(client.cmd("HSET h_3 f a"), int(1));
    assert_eq!(
        client.cmd("SORT l BY h_*->f ALPHA GET h_*->f"),
        bulks(&["a", "b", "c"])
    );
    // BY without '*' does not sort: the list keeps its order, LIMIT reads a range of it.
    assert_eq!(client.cmd("SORT l BY nosort"), bulks(&["3", "1", "2"]));
    assert_eq!(client.cmd("SORT l BY nosort DESC"), bulks(&["2", "1", "3"]));
    assert_eq!(client.cmd("SORT l BY nosort LIMIT 1 1"), bulks(&["1"]));
    // A GET pattern without '*' names nothing.
    assert_eq!(
        client.cmd("SORT l GET fixed LIMIT 0 1"),
        array(vec![Reply::Nil])
    );
    assert_eq!(client.cmd("ZADD z 3 a 1 b 2 c"), int(3));
    assert_eq!(client.cmd("SORT z BY nosort"), bulks(&["b", "c", "a"]));
    assert_eq!(client.cmd("SORT z BY nosort DESC LIMIT 1 1"), bulks(&["c"]));
    assert_eq!(client.cmd("SORT z ALPHA"), bulks(&["a", "b", "c"]));
}

#[test]
fn store_and_sort_ro() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(client.cmd("RPUSH l 3 1 2"), int(3));
    assert_eq!(client.cmd("SORT l STORE dst"), int(3));
    assert_eq!(client.cmd("LRANGE dst 0 -1"), bulks(&["1", "2", "3"]));
    assert_eq!(client.cmd("SORT l BY nosort GET h_* STORE dst"), int(3));
    assert_eq!(client.cmd("LRANGE dst 0 -1"), bulks(&["", "", ""]));
    assert_eq!(client.cmd("SORT missing STORE dst"), int(0));
    assert_eq!(client.cmd("EXISTS dst"), int(0));
    // Sets are sorted with ALPHA when BY nosort results are stored.
    assert_eq!(client.cmd("SADD set c a b 10 2"), int(5));
    assert_eq!(client.cmd("SORT set BY nosort STORE dst"), int(5));
    assert_eq!(
        client.cmd("LRANGE dst 0 -1"),
        bulks(&["10", "2", "a", "b", "c"])
    );
    assert_eq!(client.cmd("SORT_RO l STORE x"), error(SYNTAX));
    assert_eq!(client.cmd("SORT_RO l DESC"), bulks(&["3", "2", "1"]));
}
