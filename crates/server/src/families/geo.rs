//! Geo commands: GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS,
//! GEORADIUSBYMEMBER and their _RO forms.
//!
//! A geo set is a sorted set whose scores are Redis's 52-bit geohashes (`store::geohash`).
//! GEOADD becomes ZADD (and is propagated as that ZADD, as Redis does); searches visit the
//! cells Redis visits in Redis's order, so unsorted results come out as Redis's do. Coordinates
//! are printed as Redis prints long doubles (`%.17Lf`, trailing zeros trimmed; RESP3 doubles),
//! distances with four decimals. Stores propagate verbatim.

use store::geohash::{self, Shape};
use store::zset::ScoreRange;
use store::{SortedSet, Value};

use crate::arguments;
use crate::command::CommandTable;
use crate::context::{errors, CommandError, CommandResult, Context, LockedMany};
use crate::families::zsets;
use crate::notify::EventClass;

pub fn register(table: &mut CommandTable) {
    table.handle("geoadd", geoadd);
    table.handle("geopos", geopos);
    table.handle("geodist", geodist);
    table.handle("geohash", geohash_command);
    table.handle("geosearch", geosearch);
    table.handle("geosearchstore", geosearchstore);
    table.handle("georadius", georadius);
    table.handle("georadius_ro", georadius_ro);
    table.handle("georadiusbymember", georadiusbymember);
    table.handle("georadiusbymember_ro", georadiusbymember_ro);
}

const BAD_UNIT: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";
const BAD_MEMBER: &str = "ERR could not decode requested zset member";

/// A longitude,latitude pair, with Redis's errors.
fn coordinates(longitude: &[u8], latitude: &[u8]) -> Result<(f64, f64), CommandError> {
    let longitude = arguments::float(longitude)?;
    let latitude = arguments::float(latitude)?;
    if !(geohash::LONGITUDE_MIN..=geohash::LONGITUDE_MAX).contains(&longitude)
        || !(geohash::LATITUDE_MIN..=geohash::LATITUDE_MAX).contains(&latitude)
    {
        return Err(
            format!("ERR invalid longitude,latitude pair {longitude:.6},{latitude:.6}").into(),
        );
    }
    Ok((longitude, latitude))
}

/// Meters per unit.
fn unit(arg: &[u8]) -> Result<f64, CommandError> {
    if arguments::is(arg, "m") {
        Ok(1.0)
    } else if arguments::is(arg, "km") {
        Ok(1000.0)
    } else if arguments::is(arg, "ft") {
        Ok(0.3048)
    } else if arguments::is(arg, "mi") {
        Ok(1609.34)
    } else {
        Err(BAD_UNIT.into())
    }
}

fn float_or(arg: &[u8], message: &'static str) -> Result<f64, CommandError> {
    store::number::parse_f64(arg).ok_or(CommandError::from(message))
}

/// A coordinate as Redis prints a long double (`%.17Lf`, trailing zeros trimmed).
fn human_number(value: f64) -> String {
    let mut text = format!("{value:.17}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text
}

fn reply_coordinate(context: &mut Context, value: f64) {
    let text = human_number(value);
    if context.reply.is_resp3() {
        let buffer = context.reply.buffer();
        buffer.push(b',');
        buffer.extend_from_slice(text.as_bytes());
        buffer.extend_from_slice(b"\r\n");
    } else {
        context.reply.bulk(text.as_bytes());
    }
}

fn reply_distance(context: &mut Context, meters_in_unit: f64) {
    context
        .reply
        .bulk(format!("{meters_in_unit:.4}").as_bytes());
}

fn sorted_set_of(value: &Value) -> Result<&SortedSet, CommandError> {
    match value {
        Value::SortedSet(set) => Ok(set),
        _ => Err(errors::WRONG_TYPE.into()),
    }
}

/// GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]
fn geoadd(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while first < args.len() {
        if arguments::is(args[first], "NX") {
            nx = true;
        } else if arguments::is(args[first], "XX") {
            xx = true;
        } else if !arguments::is(args[first], "CH") {
            break;
        }
        first += 1;
    }
    if (args.len() - first) % 3 != 0 || (nx && xx) {
        return Err(errors::SYNTAX.into());
    }
    let mut scores: Vec<Vec<u8>> = Vec::new();
    for triple in args[first..].chunks(3) {
        let (longitude, latitude) = coordinates(triple[0], triple[1])?;
        let score = geohash::score_of(longitude, latitude).unwrap_or(0);
        scores.push(score.to_string().into_bytes());
    }
    let mut rewritten: Vec<&[u8]> = Vec::with_capacity(first + scores.len() * 2);
    rewritten.push(b"ZADD");
    rewritten.extend_from_slice(&args[1..first]);
    for (triple, score) in args[first..].chunks(3).zip(&scores) {
        rewritten.push(score);
        rewritten.push(triple[2]);
    }
    zsets::zadd(context, &rewritten)
}

/// GEOPOS key [member [member ...]]
fn geopos(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let positions: Vec<Option<(f64, f64)>> = match shard.lookup(args[1], context.now_ms) {
        None => vec![None; args.len() - 2],
        Some(entry) => {
            let set = sorted_set_of(entry.value())?;
            args[2..]
                .iter()
                .map(|member| set.score(member).and_then(geohash::position_of))
                .collect()
        }
    };
    drop(shard);
    context.reply.array(positions.len());
    for position in positions {
        match position {
            None => context.reply.null_array(),
            Some((longitude, latitude)) => {
                context.reply.array(2);
                reply_coordinate(context, longitude);
                reply_coordinate(context, latitude);
            }
        }
    }
    Ok(())
}

/// GEODIST key member1 member2 [M | KM | FT | MI]
fn geodist(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let to_meters = match args.len() {
        4 => 1.0,
        5 => unit(args[4])?,
        _ => return Err(errors::SYNTAX.into()),
    };
    let mut shard = context.lock(args[1]);
    let found = match shard.lookup(args[1], context.now_ms) {
        None => None,
        Some(entry) => {
            let set = sorted_set_of(entry.value())?;
            let first = set.score(args[2]).and_then(geohash::position_of);
            let second = set.score(args[3]).and_then(geohash::position_of);
            first.zip(second)
        }
    };
    drop(shard);
    match found {
        None => context.reply.null(),
        Some((a, b)) => reply_distance(context, geohash::distance(a.0, a.1, b.0, b.1) / to_meters),
    }
    Ok(())
}

/// GEOHASH key [member [member ...]]
fn geohash_command(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    let mut shard = context.lock(args[1]);
    let hashes: Vec<Option<[u8; 11]>> = match shard.lookup(args[1], context.now_ms) {
        None => vec![None; args.len() - 2],
        Some(entry) => {
            let set = sorted_set_of(entry.value())?;
            args[2..]
                .iter()
                .map(|member| set.score(member).and_then(geohash::hash_string))
                .collect()
        }
    };
    drop(shard);
    context.reply.array(hashes.len());
    for hash in hashes {
        match hash {
            None => context.reply.null(),
            Some(text) => context.reply.bulk(&text),
        }
    }
    Ok(())
}

/// Which search command runs (its arguments and what it may do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Search {
    /// GEORADIUS key longitude latitude radius unit ...
    Radius { read_only: bool },
    /// GEORADIUSBYMEMBER key member radius unit ...
    RadiusByMember { read_only: bool },
    /// GEOSEARCH key ...
    Search,
    /// GEOSEARCHSTORE destination source ...
    SearchStore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Unsorted,
    Ascending,
    Descending,
}

/// GEOSEARCH key <FROMMEMBER member | FROMLONLAT longitude latitude> <BYRADIUS radius <M | KM | FT | MI> | BYBOX width height <M | KM | FT | MI>> [ASC | DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]
fn geosearch(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    search_generic(context, args, Search::Search)
}

/// GEOSEARCHSTORE destination source <FROMMEMBER member | FROMLONLAT longitude latitude> <BYRADIUS radius <M | KM | FT | MI> | BYBOX width height <M | KM | FT | MI>> [ASC | DESC] [COUNT count [ANY]] [STOREDIST]
fn geosearchstore(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    search_generic(context, args, Search::SearchStore)
}

/// GEORADIUS key longitude latitude radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC | DESC] [STORE key | STOREDIST key]
fn georadius(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    search_generic(context, args, Search::Radius { read_only: false })
}

/// GEORADIUS_RO key longitude latitude radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC | DESC]
fn georadius_ro(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    search_generic(context, args, Search::Radius { read_only: true })
}

/// GEORADIUSBYMEMBER key member radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC | DESC] [STORE key | STOREDIST key]
fn georadiusbymember(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    search_generic(context, args, Search::RadiusByMember { read_only: false })
}

/// GEORADIUSBYMEMBER_RO key member radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC | DESC]
fn georadiusbymember_ro(context: &mut Context, args: &[&[u8]]) -> CommandResult {
    search_generic(context, args, Search::RadiusByMember { read_only: true })
}

/// A radius argument and its unit: (radius in meters, meters per unit).
fn radius_of(radius: &[u8], unit_arg: &[u8]) -> Result<(f64, f64), CommandError> {
    let radius = float_or(radius, "ERR need numeric radius")?;
    if radius < 0.0 {
        return Err("ERR radius cannot be negative".into());
    }
    let to_meters = unit(unit_arg)?;
    Ok((radius * to_meters, to_meters))
}

/// The keys STORE / STOREDIST options name in GEORADIUS's options (so they are locked with the
/// source; the same walk as the option parser's).
fn store_keys<'a>(args: &[&'a [u8]], base: usize) -> Vec<&'a [u8]> {
    let mut keys = Vec::new();
    let mut index = base;
    while index < args.len() {
        let arg = args[index];
        if index + 1 < args.len() {
            if arguments::is(arg, "COUNT") {
                index += 1;
            } else if arguments::is(arg, "STORE") || arguments::is(arg, "STOREDIST") {
                keys.push(args[index + 1]);
                index += 1;
            }
        }
        index += 1;
    }
    keys
}

/// A member within the shape; `member` indexes the search's buffer of member bytes.
struct Found {
    member: std::ops::Range<usize>,
    score: f64,
    distance: f64,
    longitude: f64,
    latitude: f64,
}

/// Sorts the found members by distance as asked, then keeps the first `count` (0: all).
fn order_and_limit(found: &mut Vec<Found>, order: Order, count: i64) {
    match order {
        Order::Unsorted => {}
        Order::Ascending => found.sort_by(|a, b| a.distance.total_cmp(&b.distance)),
        Order::Descending => found.sort_by(|a, b| b.distance.total_cmp(&a.distance)),
    }
    if count != 0 && (count as usize) < found.len() {
        found.truncate(count as usize);
    }
}

/// The point a geohash score stands for, when it lies within the shape around the centre;
/// `member` gives the member's range in the search's buffer (copied only for a point within).
fn measure(
    center: &geohash::Center,
    shape: Shape,
    score: f64,
    member: impl FnOnce() -> std::ops::Range<usize>,
) -> Option<Found> {
    let (longitude, latitude) = geohash::position_of(score)?;
    let distance = shape.contains(center, longitude, latitude)?;
    Some(Found {
        member: member(),
        score,
        distance,
        longitude,
        latitude,
    })
}

fn search_generic(context: &mut Context, args: &[&[u8]], search: Search) -> CommandResult {
    let source_index = if search == Search::SearchStore { 2 } else { 1 };
    let source = args[source_index];
    let now_ms = context.now_ms;
    let database = context.database();
    let mut store_key: Option<&[u8]> = if search == Search::SearchStore {
        Some(args[1])
    } else {
        None
    };
    // Lock the source and every key the arguments could name as a destination.
    let mut lock_list: Vec<&[u8]> = vec![source];
    match search {
        Search::SearchStore => lock_list.push(args[1]),
        Search::Radius { read_only: false } | Search::RadiusByMember { read_only: false } => {
            let base = if matches!(search, Search::Radius { .. }) {
                6
            } else {
                5
            };
            lock_list.extend(store_keys(args, base));
        }
        _ => {}
    }
    let mut locked = context.lock_keys(lock_list.iter().copied());
    // The source is read in place (never copied): once here for its type, again for a member's
    // position, and once for the search itself.
    let source_exists = match locked.shard(database, source).lookup(source, now_ms) {
        None => false,
        Some(entry) => {
            sorted_set_of(entry.value())?;
            true
        }
    };
    // The later reads only peek: the key's access clock moves once per command, as in Redis.
    let member_position = |locked: &mut LockedMany, member: &[u8]| {
        let shard = locked.shard(database, source);
        let entry = shard
            .peek(source, now_ms)
            .expect("the source exists and is locked");
        sorted_set_of(&entry.value)?
            .score(member)
            .and_then(geohash::position_of)
            .ok_or(CommandError::from(BAD_MEMBER))
    };
    let mut center: Option<(f64, f64)> = None;
    let mut shape: Option<(Shape, f64)> = None;
    let base = match search {
        Search::Radius { .. } => {
            center = Some(coordinates(args[2], args[3])?);
            let (radius, to_meters) = radius_of(args[4], args[5])?;
            shape = Some((Shape::Radius(radius), to_meters));
            6
        }
        Search::RadiusByMember { .. } => {
            if source_exists {
                center = Some(member_position(&mut locked, args[2])?);
                let (radius, to_meters) = radius_of(args[3], args[4])?;
                shape = Some((Shape::Radius(radius), to_meters));
            }
            5
        }
        Search::Search => 2,
        Search::SearchStore => 3,
    };
    let is_search = matches!(search, Search::Search | Search::SearchStore);
    let may_store = matches!(
        search,
        Search::Radius { read_only: false } | Search::RadiusByMember { read_only: false }
    );
    let (mut with_distance, mut with_hash, mut with_coordinates) = (false, false, false);
    let (mut from_member, mut from_location, mut by_radius, mut by_box) =
        (false, false, false, false);
    let mut order = Order::Unsorted;
    let mut any = false;
    let mut count: i64 = 0;
    let mut store_distance = false;
    let remaining = args.len() - base;
    let mut index = 0;
    while index < remaining {
        let arg = args[base + index];
        let left = remaining - index - 1;
        if arguments::is(arg, "WITHDIST") {
            with_distance = true;
        } else if arguments::is(arg, "WITHHASH") {
            with_hash = true;
        } else if arguments::is(arg, "WITHCOORD") {
            with_coordinates = true;
        } else if arguments::is(arg, "ANY") {
            any = true;
        } else if arguments::is(arg, "ASC") {
            order = Order::Ascending;
        } else if arguments::is(arg, "DESC") {
            order = Order::Descending;
        } else if arguments::is(arg, "COUNT") && left >= 1 {
            count = arguments::integer(args[base + index + 1])?;
            if count <= 0 {
                return Err("ERR COUNT must be > 0".into());
            }
            index += 1;
        } else if (arguments::is(arg, "STORE") || arguments::is(arg, "STOREDIST"))
            && left >= 1
            && may_store
        {
            store_key = Some(args[base + index + 1]);
            store_distance = arguments::is(arg, "STOREDIST");
            index += 1;
        } else if arguments::is(arg, "STOREDIST") && search == Search::SearchStore {
            store_distance = true;
        } else if arguments::is(arg, "FROMMEMBER") && left >= 1 && is_search && !from_location {
            if source_exists {
                center = Some(member_position(&mut locked, args[base + index + 1])?);
            }
            from_member = true;
            index += 1;
        } else if arguments::is(arg, "FROMLONLAT") && left >= 2 && is_search && !from_member {
            center = Some(coordinates(args[base + index + 1], args[base + index + 2])?);
            from_location = true;
            index += 2;
        } else if arguments::is(arg, "BYRADIUS") && left >= 2 && is_search && !by_box {
            let (radius, to_meters) = radius_of(args[base + index + 1], args[base + index + 2])?;
            shape = Some((Shape::Radius(radius), to_meters));
            by_radius = true;
            index += 2;
        } else if arguments::is(arg, "BYBOX") && left >= 3 && is_search && !by_radius {
            let width = float_or(args[base + index + 1], "ERR need numeric width")?;
            let height = float_or(args[base + index + 2], "ERR need numeric height")?;
            if width < 0.0 || height < 0.0 {
                return Err("ERR height or width cannot be negative".into());
            }
            let to_meters = unit(args[base + index + 3])?;
            shape = Some((
                Shape::Box {
                    width: width * to_meters,
                    height: height * to_meters,
                },
                to_meters,
            ));
            by_box = true;
            index += 3;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    if store_key.is_some() && (with_distance || with_hash || with_coordinates) {
        let what = if search == Search::SearchStore {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )
        .into());
    }
    let name = String::from_utf8_lossy(args[0]).into_owned();
    if is_search && !(from_member || from_location) {
        return Err(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )
        .into());
    }
    if is_search && !(by_radius || by_box) {
        return Err(
            format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {name}").into(),
        );
    }
    if any && count == 0 {
        return Err("ERR the ANY argument requires COUNT argument".into());
    }
    if !source_exists {
        match store_key {
            Some(destination) => {
                let shard = locked.shard(database, destination);
                if shard.remove(destination, now_ms).is_some() {
                    locked.propagate(database, args);
                    drop(locked);
                    context.notify(EventClass::Generic, "del", destination);
                }
                context.reply.integer(0);
            }
            None => context.reply.array(0),
        }
        return Ok(());
    };
    let center = center.expect("a centre was parsed");
    let (shape, to_meters) = shape.expect("a shape was parsed");
    if count != 0 && order == Order::Unsorted && !any {
        order = Order::Ascending;
    }
    let limit = if any { count as usize } else { 0 };
    let center = geohash::Center::new(center.0, center.1);
    let areas = geohash::search_areas((center.longitude, center.latitude), shape);
    // Members' bytes, one after another; `Found` and `candidates` hold ranges of it.
    let mut names: Vec<u8> = Vec::new();
    let mut found: Vec<Found> = Vec::new();
    let shard = locked.shard(database, source);
    let entry = shard
        .peek(source, now_ms)
        .expect("the source exists and is locked");
    let set = sorted_set_of(&entry.value)?;
    // A plain search copies the members of the visited cells and measures them after letting
    // the key go, so a busy key is held for the walk alone. ANY (which stops at its count) and
    // stores (which write under the same locks) measure as they walk.
    let measure_outside = limit == 0 && store_key.is_none();
    let mut candidates: Vec<(std::ops::Range<usize>, f64)> = Vec::new();
    'areas: for (min, max) in areas {
        let range = ScoreRange {
            min: min as f64,
            max: max as f64,
            min_exclusive: false,
            max_exclusive: true,
        };
        for (member, score) in set.score_range(&range) {
            if measure_outside {
                names.extend_from_slice(member);
                candidates.push((names.len() - member.len()..names.len(), score));
                continue;
            }
            if let Some(item) = measure(&center, shape, score, || {
                names.extend_from_slice(member);
                names.len() - member.len()..names.len()
            }) {
                found.push(item);
                if limit != 0 && found.len() >= limit {
                    break 'areas;
                }
            }
        }
    }
    let Some(destination) = store_key else {
        drop(locked);
        found.extend(
            candidates
                .into_iter()
                .filter_map(|(member, score)| measure(&center, shape, score, || member)),
        );
        order_and_limit(&mut found, order, count);
        let options = with_distance as usize + with_hash as usize + with_coordinates as usize;
        context.reply.array(found.len());
        for item in found {
            if options > 0 {
                context.reply.array(options + 1);
            }
            context.reply.bulk(&names[item.member]);
            if with_distance {
                reply_distance(context, item.distance / to_meters);
            }
            if with_hash {
                context.reply.integer(item.score as i64);
            }
            if with_coordinates {
                context.reply.array(2);
                reply_coordinate(context, item.longitude);
                reply_coordinate(context, item.latitude);
            }
        }
        return Ok(());
    };
    debug_assert!(candidates.is_empty(), "a store measures as it walks");
    order_and_limit(&mut found, order, count);
    let stored = found.len();
    let entries: Vec<(Vec<u8>, f64)> = found
        .into_iter()
        .map(|item| {
            let score = if store_distance {
                item.distance / to_meters
            } else {
                item.score
            };
            (names[item.member].to_vec(), score)
        })
        .collect();
    let limits = zsets::limits(context);
    let event = if is_search {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    zsets::store_result(
        context.server,
        event,
        &mut locked,
        database,
        destination,
        entries,
        &limits,
        args,
        now_ms,
    );
    drop(locked);
    context.reply.integer(stored as i64);
    Ok(())
}
