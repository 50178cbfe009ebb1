//! Geo commands as clients see them: GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH,
//! GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and the _RO forms, with Redis's replies (values
//! taken from redis-server).

mod common;

use common::*;

const SYNTAX: &str = "ERR syntax error";
const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn arity_error(command: &str) -> Reply {
    error(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

fn sicily(client: &mut RawClient) {
    assert_eq!(
        client.cmd("GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"),
        int(2)
    );
}

#[test]
fn geoadd_stores_geohash_scores() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    sicily(&mut client);
    assert_eq!(
        client.cmd("ZSCORE Sicily Palermo"),
        bulk("3479099956230698")
    );
    assert_eq!(
        client.cmd("ZSCORE Sicily Catania"),
        bulk("3479447370796909")
    );
    assert_eq!(
        client.cmd("GEOADD Sicily CH 13.361389 38.115556 Palermo 1 1 Nowhere"),
        int(1)
    );
    assert_eq!(
        client.cmd("GEOADD Sicily XX CH 13.36 38.11 Palermo 2 2 New"),
        int(1)
    );
    assert_eq!(client.cmd("ZCARD Sicily"), int(3));
    assert_eq!(client.cmd("GEOADD Sicily NX 1 1 Palermo"), int(0));
    assert_eq!(
        client.cmd("GEOADD Sicily 200 100 x"),
        error("ERR invalid longitude,latitude pair 200.000000,100.000000")
    );
    assert_eq!(
        client.cmd("GEOADD Sicily 10 85.06 x"),
        error("ERR invalid longitude,latitude pair 10.000000,85.060000")
    );
    assert_eq!(
        client.cmd("GEOADD Sicily x 2 a"),
        error("ERR value is not a valid float")
    );
    assert_eq!(client.cmd("GEOADD Sicily 1 2 a 3"), error(SYNTAX));
    assert_eq!(client.cmd("GEOADD Sicily NX XX 1 2 a"), error(SYNTAX));
    assert_eq!(client.cmd("GEOADD Sicily GT 1 2 a"), error(SYNTAX));
    assert_eq!(client.cmd("GEOADD Sicily 1 2"), arity_error("geoadd"));
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(client.cmd("GEOADD l 1 1 a"), error(WRONG_TYPE));
}

#[test]
fn geopos_geodist_geohash() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    sicily(&mut client);
    assert_eq!(
        client.cmd("GEOPOS Sicily Palermo nope"),
        array(vec![
            bulks(&["13.36138933897018433", "38.11555639549629859"]),
            Reply::NilArray,
        ])
    );
    assert_eq!(client.cmd("GEOPOS missing a"), array(vec![Reply::NilArray]));
    assert_eq!(client.cmd("GEOPOS Sicily"), array(vec![]));
    assert_eq!(
        client.cmd("GEODIST Sicily Palermo Catania"),
        bulk("166274.1516")
    );
    assert_eq!(
        client.cmd("GEODIST Sicily Palermo Catania km"),
        bulk("166.2742")
    );
    assert_eq!(
        client.cmd("GEODIST Sicily Palermo Catania MI"),
        bulk("103.3182")
    );
    assert_eq!(
        client.cmd("GEODIST Sicily Palermo Catania ft"),
        bulk("545518.8700")
    );
    assert_eq!(
        client.cmd("GEODIST Sicily Palermo Catania yd"),
        error("ERR unsupported unit provided. please use M, KM, FT, MI")
    );
    assert_eq!(client.cmd("GEODIST Sicily Palermo nope"), Reply::Nil);
    assert_eq!(client.cmd("GEODIST missing a b"), Reply::Nil);
    assert_eq!(client.cmd("GEODIST Sicily a b km x"), error(SYNTAX));
    assert_eq!(
        client.cmd("GEOHASH Sicily Palermo Catania nope"),
        array(vec![bulk("sqc8b49rny0"), bulk("sqdtr74hyu0"), Reply::Nil])
    );
    assert_eq!(client.cmd("GEOHASH missing a"), array(vec![Reply::Nil]));
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(client.cmd("GEOPOS l a"), error(WRONG_TYPE));
    assert_eq!(client.cmd("GEODIST l a b"), error(WRONG_TYPE));
    assert_eq!(client.cmd("GEOHASH l a"), error(WRONG_TYPE));
}

#[test]
fn georadius_and_options() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    assert_eq!(
        client.cmd("GEOADD Sicily 13.36 38.11 Palermo 15.087269 37.502669 Catania"),
        int(2)
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD WITHHASH"),
        array(vec![
            array(vec![
                bulk("Palermo"),
                bulk("190.1377"),
                int(3479099943497504),
                bulks(&["13.35999995470046997", "38.11000028671502804"]),
            ]),
            array(vec![
                bulk("Catania"),
                bulk("56.4413"),
                int(3479447370796909),
                bulks(&["15.08726745843887329", "37.50266842333162032"]),
            ]),
        ])
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km ASC"),
        bulks(&["Catania", "Palermo"])
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km DESC WITHDIST"),
        array(vec![
            bulks(&["Palermo", "190.1377"]),
            bulks(&["Catania", "56.4413"]),
        ])
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km COUNT 1"),
        bulks(&["Catania"])
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km COUNT 1 ANY"),
        bulks(&["Palermo"])
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km ANY"),
        error("ERR the ANY argument requires COUNT argument")
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km COUNT 0"),
        error("ERR COUNT must be > 0")
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 -1 km"),
        error("ERR radius cannot be negative")
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 x km"),
        error("ERR need numeric radius")
    );
    assert_eq!(client.cmd("GEORADIUS Sicily 15 37 10 km"), array(vec![]));
    assert_eq!(client.cmd("GEORADIUS missing 15 37 10 km"), array(vec![]));
    assert_eq!(
        client.cmd("GEORADIUSBYMEMBER Sicily Palermo 200 km WITHDIST"),
        array(vec![
            bulks(&["Palermo", "0.0000"]),
            bulks(&["Catania", "166.1385"]),
        ])
    );
    assert_eq!(
        client.cmd("GEORADIUSBYMEMBER Sicily nope 200 km"),
        error("ERR could not decode requested zset member")
    );
    assert_eq!(
        client.cmd("GEORADIUSBYMEMBER_RO Sicily Catania 100 km"),
        bulks(&["Catania"])
    );
    assert_eq!(
        client.cmd("GEORADIUS_RO Sicily 15 37 200 km STORE d"),
        error(SYNTAX)
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37"),
        arity_error("georadius")
    );
}

#[test]
fn georadius_store() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    sicily(&mut client);
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km STORE d WITHDIST"),
        error("ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    );
    assert_eq!(client.cmd("GEORADIUS Sicily 15 37 200 km STORE d"), int(2));
    assert_eq!(
        client.cmd("ZRANGE d 0 -1 WITHSCORES"),
        bulks(&["Palermo", "3479099956230698", "Catania", "3479447370796909"])
    );
    assert_eq!(
        client.cmd("GEORADIUS Sicily 15 37 200 km STOREDIST d"),
        int(2)
    );
    assert_eq!(client.cmd("ZRANGE d 0 -1"), bulks(&["Catania", "Palermo"]));
    assert_eq!(client.cmd("GEORADIUS Sicily 15 37 1 km STORE d"), int(0));
    assert_eq!(client.cmd("EXISTS d"), int(0));
    assert_eq!(client.cmd("SET d x"), ok());
    assert_eq!(
        client.cmd("GEORADIUSBYMEMBER missing a 1 km STORE d"),
        int(0)
    );
    assert_eq!(client.cmd("EXISTS d"), int(0));
}

#[test]
fn geosearch_and_geosearchstore() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    sicily(&mut client);
    assert_eq!(
        client.cmd("GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km WITHDIST"),
        array(vec![
            bulks(&["Palermo", "190.4424"]),
            bulks(&["Catania", "56.4413"]),
        ])
    );
    assert_eq!(
        client.cmd("GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 100 km"),
        bulks(&["Palermo"])
    );
    assert_eq!(
        client.cmd("GEOSEARCH Sicily BYRADIUS 200 km ASC WITHDIST"),
        error("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH")
    );
    assert_eq!(
        client.cmd("GEOSEARCH Sicily FROMLONLAT 15 37 ASC WITHDIST"),
        error("ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH")
    );
    assert_eq!(
        client.cmd("GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km FROMMEMBER Palermo"),
        error(SYNTAX)
    );
    assert_eq!(
        client.cmd("GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km STORE x"),
        error(SYNTAX)
    );
    assert_eq!(
        client.cmd("GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 1 km"),
        error("ERR height or width cannot be negative")
    );
    assert_eq!(
        client.cmd("GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX x 1 km"),
        error("ERR need numeric width")
    );
    assert_eq!(
        client.cmd("GEOSEARCH missing FROMMEMBER x BYRADIUS 1 km"),
        array(vec![])
    );
    assert_eq!(
        client.cmd("GEOSEARCHSTORE d Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST"),
        error("ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    );
    assert_eq!(
        client.cmd("GEOSEARCHSTORE d Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST"),
        int(2)
    );
    assert_eq!(client.cmd("ZRANGE d 0 -1"), bulks(&["Catania", "Palermo"]));
    assert_eq!(
        client.cmd("GEOSEARCHSTORE d missing FROMLONLAT 15 37 BYRADIUS 200 km"),
        int(0)
    );
    assert_eq!(client.cmd("EXISTS d"), int(0));
    // Unsorted results come in Redis's cell order.
    assert_eq!(
        client.cmd("GEOADD big 0 0 a 0.001 0.001 b -0.001 0.001 c 0.001 -0.001 d -0.001 -0.001 e"),
        int(5)
    );
    assert_eq!(
        client.cmd("GEOSEARCH big FROMLONLAT 0 0 BYRADIUS 500 km"),
        bulks(&["a", "b", "d", "c", "e"])
    );
    assert_eq!(client.cmd("LPUSH l a"), int(1));
    assert_eq!(
        client.cmd("GEOSEARCH l FROMLONLAT 1 1 BYRADIUS 1 km"),
        error(WRONG_TYPE)
    );
}

#[test]
fn resp3_coordinates_are_doubles() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    sicily(&mut client);
    client.cmd("HELLO 3");
    assert_eq!(
        client.cmd("GEOPOS Sicily Palermo"),
        array(vec![array(vec![
            Reply::Double("13.36138933897018433".into()),
            Reply::Double("38.11555639549629859".into()),
        ])])
    );
}
