//! Rule 11, made blocking: outputs over populations that differ by 1–9 units from an earlier
//! output of the same workspace are refused, because their difference is one small group's
//! value (the tracker and drop-one attacks of the attack suite).
//!
//! Every output's population is kept as an *invertible Bloom lookup table* of its unit ids:
//! 66 cells, a few hundred bytes, however large the population. Subtracting two sketches and
//! peeling the result recovers the symmetric difference of the two populations whenever it is
//! small (up to about 40 units); a larger difference fails to peel, which is all the rule
//! needs to know.

const SUBTABLES: usize = 3;
const CELLS_PER_SUBTABLE: usize = 22;
const CELLS: usize = SUBTABLES * CELLS_PER_SUBTABLE;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cell {
    count: i64,
    ids: i64,
    checks: u64,
}

/// The population of one output, as an IBLT of unit ids.
#[derive(Clone, Debug)]
pub struct PopulationSketch {
    cells: [Cell; CELLS],
    /// The id inserted last. A panel hands over a unit's rows one after another; the unit is
    /// one member of the population however many dates it has, so a repeat is skipped (an
    /// IBLT holding an id twice would no longer peel against one holding it once).
    last: Option<i64>,
    /// Units inserted: two populations whose sizes differ by `d` differ by at least `d` units,
    /// which settles most comparisons without decoding.
    len: u64,
}

impl Default for PopulationSketch {
    fn default() -> PopulationSketch {
        PopulationSketch { cells: [Cell::default(); CELLS], last: None, len: 0 }
    }
}

impl PartialEq for PopulationSketch {
    fn eq(&self, other: &PopulationSketch) -> bool {
        self.cells == other.cells
    }
}

impl Eq for PopulationSketch {}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn check(id: i64) -> u64 {
    mix(id as u64 ^ 0x5EED_5EED_5EED_5EED)
}

fn cell_index(id: i64, table: usize) -> usize {
    let h = mix((id as u64).wrapping_add(table as u64 * 0x1000_0000_01B3));
    table * CELLS_PER_SUBTABLE + (h % CELLS_PER_SUBTABLE as u64) as usize
}

impl PopulationSketch {
    /// Bytes of [`PopulationSketch::to_bytes`].
    const BYTES: usize = CELLS * 24 + 8 + 9;

    /// The sketch as bytes, for the disclosure memory in the application database.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(Self::BYTES);
        for cell in &self.cells {
            bytes.extend_from_slice(&cell.count.to_le_bytes());
            bytes.extend_from_slice(&cell.ids.to_le_bytes());
            bytes.extend_from_slice(&cell.checks.to_le_bytes());
        }
        bytes.extend_from_slice(&self.len.to_le_bytes());
        bytes.push(u8::from(self.last.is_some()));
        bytes.extend_from_slice(&self.last.unwrap_or(0).to_le_bytes());
        bytes
    }

    /// The sketch [`PopulationSketch::to_bytes`] gave; None for bytes of another shape.
    pub fn from_bytes(bytes: &[u8]) -> Option<PopulationSketch> {
        if bytes.len() != Self::BYTES {
            return None;
        }
        let word = |at: usize| -> [u8; 8] { bytes[at..at + 8].try_into().unwrap_or([0; 8]) };
        let mut sketch = PopulationSketch::default();
        for (i, cell) in sketch.cells.iter_mut().enumerate() {
            let at = i * 24;
            *cell = Cell {
                count: i64::from_le_bytes(word(at)),
                ids: i64::from_le_bytes(word(at + 8)),
                checks: u64::from_le_bytes(word(at + 16)),
            };
        }
        let at = CELLS * 24;
        sketch.len = u64::from_le_bytes(word(at));
        sketch.last = (bytes[at + 8] == 1).then(|| i64::from_le_bytes(word(at + 9)));
        Some(sketch)
    }

    pub fn insert(&mut self, id: i64) {
        if self.last == Some(id) {
            return;
        }
        self.last = Some(id);
        self.len += 1;
        let c = check(id);
        for t in 0..SUBTABLES {
            let cell = &mut self.cells[cell_index(id, t)];
            cell.count += 1;
            cell.ids ^= id;
            cell.checks ^= c;
        }
    }

    /// How many units the population holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many units are in exactly one of the two populations, when that is small enough to
    /// decode; `None` means "many".
    pub fn difference(&self, other: &PopulationSketch) -> Option<usize> {
        let mut cells = self.cells;
        for (a, b) in cells.iter_mut().zip(&other.cells) {
            a.count -= b.count;
            a.ids ^= b.ids;
            a.checks ^= b.checks;
        }
        let mut found = 0;
        loop {
            let pure = cells
                .iter()
                .position(|c| (c.count == 1 || c.count == -1) && c.checks == check(c.ids));
            let Some(i) = pure else { break };
            let (id, sign) = (cells[i].ids, cells[i].count);
            let c = check(id);
            for t in 0..SUBTABLES {
                let cell = &mut cells[cell_index(id, t)];
                cell.count -= sign;
                cell.ids ^= id;
                cell.checks ^= c;
            }
            found += 1;
        }
        cells.iter().all(|c| *c == Cell::default()).then_some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch(ids: impl IntoIterator<Item = i64>) -> PopulationSketch {
        let mut s = PopulationSketch::default();
        ids.into_iter().for_each(|id| s.insert(id));
        s
    }

    #[test]
    fn small_differences_decode_exactly_and_large_ones_do_not() {
        let base = sketch(0..100_000);
        assert_eq!(base.difference(&base), Some(0));
        for d in 1..=15 {
            let other = sketch((0..100_000).filter(|i| i % 5_000 != 7 || *i / 5_000 >= d));
            assert_eq!(base.difference(&other), Some(d as usize), "{d} removed");
        }
        // One removed and one added: two units differ.
        let swapped = sketch((1..100_000).chain([1_000_000]));
        assert_eq!(base.difference(&swapped), Some(2));
        assert_eq!(base.difference(&sketch(0..50_000)), None);
    }

    #[test]
    fn a_unit_inserted_once_per_panel_date_is_one_member() {
        let cross_section = sketch(0..1_000);
        let panel = sketch((0..1_000).flat_map(|id| [id, id, id]));
        assert_eq!(cross_section.difference(&panel), Some(0));
        let panel_with_one_more = sketch((0..1_001).flat_map(|id| [id, id]));
        assert_eq!(cross_section.difference(&panel_with_one_more), Some(1));
    }
}
