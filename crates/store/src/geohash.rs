//! Redis's geohash: 52-bit interleaved cells (latitude in the even bits, longitude in the odd
//! bits, 26 bits each) used as sorted-set scores, decoding to the cell's centre, haversine
//! distances on Redis's earth radius, and the neighbouring cells a radius or box search visits
//! (`search_areas`), chosen exactly as Redis chooses them so results come out in Redis's order.

pub const STEP_MAX: u32 = 26;
pub const LONGITUDE_MIN: f64 = -180.0;
pub const LONGITUDE_MAX: f64 = 180.0;
pub const LATITUDE_MIN: f64 = -85.051_128_78;
pub const LATITUDE_MAX: f64 = 85.051_128_78;
pub const EARTH_RADIUS_METERS: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;
const DEGREES_TO_RADIANS: f64 = std::f64::consts::PI / 180.0;

/// A cell: `bits` (2 * `step` bits) at precision `step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u32,
}

impl Cell {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Area {
    pub longitude_min: f64,
    pub longitude_max: f64,
    pub latitude_min: f64,
    pub latitude_max: f64,
}

fn spread(value: u32) -> u64 {
    let mut x = value as u64;
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

fn squash(value: u64) -> u32 {
    let mut x = value & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    x = (x | (x >> 16)) & 0x0000_0000_ffff_ffff;
    x as u32
}

/// Encodes a point at `step` within the given latitude range (Redis uses ±85.05 for scores and
/// ±90 for GEOHASH strings); None outside the ranges.
pub fn encode_in(
    longitude: f64,
    latitude: f64,
    step: u32,
    latitude_range: (f64, f64),
) -> Option<Cell> {
    if !(LONGITUDE_MIN..=LONGITUDE_MAX).contains(&longitude)
        || !(LATITUDE_MIN..=LATITUDE_MAX).contains(&latitude)
        || latitude < latitude_range.0
        || latitude > latitude_range.1
    {
        return None;
    }
    let latitude_offset = (latitude - latitude_range.0) / (latitude_range.1 - latitude_range.0);
    let longitude_offset = (longitude - LONGITUDE_MIN) / (LONGITUDE_MAX - LONGITUDE_MIN);
    let scale = (1u64 << step) as f64;
    let latitude_fixed = (latitude_offset * scale) as u32;
    let longitude_fixed = (longitude_offset * scale) as u32;
    Some(Cell {
        bits: spread(latitude_fixed) | (spread(longitude_fixed) << 1),
        step,
    })
}

/// Encodes a point at `step` in the WGS84 (score) ranges.
pub fn encode(longitude: f64, latitude: f64, step: u32) -> Option<Cell> {
    encode_in(longitude, latitude, step, (LATITUDE_MIN, LATITUDE_MAX))
}

/// The 52-bit score of a point.
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode(longitude, latitude, STEP_MAX).map(|cell| cell.bits)
}

/// The area a cell covers (within the given latitude range); None for the zero cell.
pub fn decode_in(cell: Cell, latitude_range: (f64, f64)) -> Option<Area> {
    if cell.is_zero() {
        return None;
    }
    let latitude_fixed = squash(cell.bits);
    let longitude_fixed = squash(cell.bits >> 1);
    let scale = (1u64 << cell.step) as f64;
    let latitude_span = latitude_range.1 - latitude_range.0;
    let longitude_span = LONGITUDE_MAX - LONGITUDE_MIN;
    Some(Area {
        latitude_min: latitude_range.0 + (latitude_fixed as f64 * 1.0 / scale) * latitude_span,
        latitude_max: latitude_range.0
            + ((latitude_fixed as u64 + 1) as f64 * 1.0 / scale) * latitude_span,
        longitude_min: LONGITUDE_MIN + (longitude_fixed as f64 * 1.0 / scale) * longitude_span,
        longitude_max: LONGITUDE_MIN
            + ((longitude_fixed as u64 + 1) as f64 * 1.0 / scale) * longitude_span,
    })
}

pub fn decode(cell: Cell) -> Option<Area> {
    decode_in(cell, (LATITUDE_MIN, LATITUDE_MAX))
}

/// The point a score stands for: its cell's centre, clamped to the valid ranges.
pub fn position_of(score: f64) -> Option<(f64, f64)> {
    let area = decode(Cell {
        bits: score as u64,
        step: STEP_MAX,
    })?;
    let longitude =
        ((area.longitude_min + area.longitude_max) / 2.0).clamp(LONGITUDE_MIN, LONGITUDE_MAX);
    let latitude =
        ((area.latitude_min + area.latitude_max) / 2.0).clamp(LATITUDE_MIN, LATITUDE_MAX);
    Some((longitude, latitude))
}

/// GEOHASH's 11-character string of a score (re-encoded with latitude in ±90).
pub fn hash_string(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (longitude, latitude) = position_of(score)?;
    let bits = encode_in(longitude, latitude, STEP_MAX, (-90.0, 90.0)).map_or(0, |cell| cell.bits);
    let mut out = [b'0'; 11];
    for (index, slot) in out.iter_mut().enumerate().take(10) {
        let shift = 52 - (index + 1) * 5;
        *slot = ALPHABET[((bits >> shift) & 0x1f) as usize];
    }
    Some(out)
}

fn radians(degrees: f64) -> f64 {
    degrees * DEGREES_TO_RADIANS
}

fn degrees(radians: f64) -> f64 {
    radians / DEGREES_TO_RADIANS
}

/// The distance in meters along a meridian between two latitudes.
pub fn latitude_distance(latitude1: f64, latitude2: f64) -> f64 {
    EARTH_RADIUS_METERS * (radians(latitude2) - radians(latitude1)).abs()
}

/// Haversine distance in meters, as Redis computes it.
pub fn distance(longitude1: f64, latitude1: f64, longitude2: f64, latitude2: f64) -> f64 {
    let v = ((radians(longitude2) - radians(longitude1)) / 2.0).sin();
    if v == 0.0 {
        return latitude_distance(latitude1, latitude2);
    }
    let latitude1 = radians(latitude1);
    let latitude2 = radians(latitude2);
    let u = ((latitude2 - latitude1) / 2.0).sin();
    let a = u * u + latitude1.cos() * latitude2.cos() * v * v;
    2.0 * EARTH_RADIUS_METERS * a.sqrt().asin()
}

/// A search shape, in meters.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search's centre, with the trigonometry every distance from it shares computed once. The
/// distances it gives are bit-for-bit those of [`distance`] from the same point.
#[derive(Clone, Copy, Debug)]
pub struct Center {
    pub longitude: f64,
    pub latitude: f64,
    longitude_radians: f64,
    latitude_radians: f64,
    latitude_cosine: f64,
}

impl Center {
    pub fn new(longitude: f64, latitude: f64) -> Center {
        Center {
            longitude,
            latitude,
            longitude_radians: radians(longitude),
            latitude_radians: radians(latitude),
            latitude_cosine: radians(latitude).cos(),
        }
    }

    /// [`distance`] from the centre to a point.
    fn distance_to(&self, longitude: f64, latitude: f64) -> f64 {
        let v = ((radians(longitude) - self.longitude_radians) / 2.0).sin();
        if v == 0.0 {
            return latitude_distance(self.latitude, latitude);
        }
        let latitude2 = radians(latitude);
        let u = ((latitude2 - self.latitude_radians) / 2.0).sin();
        let a = u * u + self.latitude_cosine * latitude2.cos() * v * v;
        2.0 * EARTH_RADIUS_METERS * a.sqrt().asin()
    }
}

/// Relative margin on the latitude-only rejection of a radius search. A great-circle distance is
/// never shorter than the distance along the meridian alone; the margin keeps rounding from
/// ever rejecting a point the full formula would accept.
const LATITUDE_REJECT_MARGIN: f64 = 1e-9;

impl Shape {
    /// The distance from the centre when the point lies within the shape.
    pub fn contains(&self, center: &Center, longitude: f64, latitude: f64) -> Option<f64> {
        match *self {
            Shape::Radius(radius) => {
                if latitude_distance(center.latitude, latitude)
                    > radius * (1.0 + LATITUDE_REJECT_MARGIN)
                {
                    return None;
                }
                let found = center.distance_to(longitude, latitude);
                (found <= radius).then_some(found)
            }
            Shape::Box { width, height } => {
                if latitude_distance(latitude, center.latitude) > height / 2.0 {
                    return None;
                }
                if distance(longitude, latitude, center.longitude, latitude) > width / 2.0 {
                    return None;
                }
                Some(center.distance_to(longitude, latitude))
            }
        }
    }
}

fn estimate_step(mut range_meters: f64, latitude: f64) -> u32 {
    if range_meters == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&latitude) {
        step -= 1;
        if !(-80.0..=80.0).contains(&latitude) {
            step -= 1;
        }
    }
    step.clamp(1, STEP_MAX as i32) as u32
}

fn move_x(cell: &mut Cell, direction: i8) {
    if direction == 0 {
        return;
    }
    let mut x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - cell.step * 2);
    if direction > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - cell.step * 2);
    cell.bits = x | y;
}

fn move_y(cell: &mut Cell, direction: i8) {
    if direction == 0 {
        return;
    }
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = cell.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - cell.step * 2);
    if direction > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> (64 - cell.step * 2);
    cell.bits = x | y;
}

fn neighbour(cell: Cell, dx: i8, dy: i8) -> Cell {
    let mut moved = cell;
    move_x(&mut moved, dx);
    move_y(&mut moved, dy);
    moved
}

/// The cells a search visits, in Redis's order (centre, north, south, east, west, north-east,
/// north-west, south-east, south-west), with useless ones removed; each as a score range
/// `[min, max)`.
pub fn search_areas(center: (f64, f64), shape: Shape) -> Vec<(u64, u64)> {
    let (longitude, latitude) = center;
    let (half_width, half_height, radius) = match shape {
        Shape::Radius(radius) => (radius, radius, radius),
        Shape::Box { width, height } => (
            width / 2.0,
            height / 2.0,
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt(),
        ),
    };
    let latitude_delta = degrees(half_height / EARTH_RADIUS_METERS);
    let longitude_delta_top =
        degrees(half_width / EARTH_RADIUS_METERS / radians(latitude + latitude_delta).cos());
    let longitude_delta_bottom =
        degrees(half_width / EARTH_RADIUS_METERS / radians(latitude - latitude_delta).cos());
    let southern = latitude < 0.0;
    let min_longitude = if southern {
        longitude - longitude_delta_bottom
    } else {
        longitude - longitude_delta_top
    };
    let max_longitude = if southern {
        longitude + longitude_delta_bottom
    } else {
        longitude + longitude_delta_top
    };
    let min_latitude = latitude - latitude_delta;
    let max_latitude = latitude + latitude_delta;

    let mut step = estimate_step(radius, latitude);
    let cells_at = |step: u32| {
        let cell = encode(longitude, latitude, step).unwrap_or_default();
        let around = [
            cell,
            neighbour(cell, 0, 1),
            neighbour(cell, 0, -1),
            neighbour(cell, 1, 0),
            neighbour(cell, -1, 0),
            neighbour(cell, 1, 1),
            neighbour(cell, -1, 1),
            neighbour(cell, 1, -1),
            neighbour(cell, -1, -1),
        ];
        around
    };
    let mut cells = cells_at(step);
    let area_of = |cell: Cell| decode(cell).unwrap_or_default();
    let decrease = area_of(cells[1]).latitude_max < max_latitude
        || area_of(cells[2]).latitude_min > min_latitude
        || area_of(cells[3]).longitude_max < max_longitude
        || area_of(cells[4]).longitude_min > min_longitude;
    if step > 1 && decrease {
        step -= 1;
        cells = cells_at(step);
    }
    let area = area_of(cells[0]);
    let zero = Cell::default();
    if step >= 2 {
        if area.latitude_min < min_latitude {
            for index in [2, 8, 7] {
                cells[index] = zero;
            }
        }
        if area.latitude_max > max_latitude {
            for index in [1, 5, 6] {
                cells[index] = zero;
            }
        }
        if area.longitude_min < min_longitude {
            for index in [4, 8, 6] {
                cells[index] = zero;
            }
        }
        if area.longitude_max > max_longitude {
            for index in [3, 7, 5] {
                cells[index] = zero;
            }
        }
    }
    let mut ranges = Vec::with_capacity(9);
    let mut last_processed = 0usize;
    for (index, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        if last_processed != 0
            && cell.bits == cells[last_processed].bits
            && cell.step == cells[last_processed].step
        {
            continue;
        }
        let shift = 52 - cell.step * 2;
        ranges.push((cell.bits << shift, (cell.bits + 1) << shift));
        last_processed = index;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_decode_as_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" stores score 3479099956230698.
        assert_eq!(score_of(13.361389, 38.115556), Some(3_479_099_956_230_698));
        assert_eq!(score_of(15.087269, 37.502669), Some(3_479_447_370_796_909));
        let (longitude, latitude) = position_of(3_479_099_956_230_698.0).unwrap();
        assert_eq!(format!("{longitude:.17}"), "13.36138933897018433");
        assert_eq!(format!("{latitude:.17}"), "38.11555639549629859");
        assert_eq!(
            &hash_string(3_479_099_956_230_698.0).unwrap(),
            b"sqc8b49rny0"
        );
        assert_eq!(score_of(200.0, 10.0), None);
        assert_eq!(score_of(10.0, 86.0), None);
    }

    #[test]
    fn distances_as_redis() {
        let palermo = position_of(3_479_099_956_230_698.0).unwrap();
        let catania = position_of(3_479_447_370_796_909.0).unwrap();
        let meters = distance(palermo.0, palermo.1, catania.0, catania.1);
        assert_eq!(format!("{meters:.4}"), "166274.1516");
    }

    #[test]
    fn centre_distances_are_the_plain_formula() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |span: f64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 1_000_000) as f64 / 1_000_000.0 * 2.0 * span - span
        };
        for _ in 0..10_000 {
            let (longitude1, latitude1) = (next(180.0), next(85.0));
            let (longitude2, latitude2) = (next(180.0), next(85.0));
            let center = Center::new(longitude1, latitude1);
            let plain = distance(longitude1, latitude1, longitude2, latitude2);
            assert_eq!(
                center.distance_to(longitude2, latitude2).to_bits(),
                plain.to_bits()
            );
            // The latitude-only rejection never drops a point within the radius.
            let radius = plain * (1.0 + next(1e-6));
            assert_eq!(
                Shape::Radius(radius)
                    .contains(&center, longitude2, latitude2)
                    .is_some(),
                plain <= radius
            );
        }
    }

    #[test]
    fn search_areas_cover_the_centre() {
        let areas = search_areas((15.0, 37.0), Shape::Radius(200_000.0));
        let palermo = 3_479_099_956_230_698u64;
        assert!(areas
            .iter()
            .any(|(min, max)| (*min..*max).contains(&palermo)));
    }
}
