//! The population model behind the synthetic registers.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use shared::Date;

use super::codes::{self, MUNICIPALITIES, NACE, NUS, OCCUPATIONS};
use super::variables::Var;
use super::{FIRST_YEAR, LAST_YEAR, PartWriters};
use crate::datastore::{Cell, DatastoreError};

const YEARS: usize = (LAST_YEAR - FIRST_YEAR + 1) as usize;
/// a-ordningen, the source of the job variables, starts in 2015.
const JOBS_FROM: i32 = 2015;
const HOUSEHOLDS_FROM: i32 = 2005;
const AAP_FROM: i32 = 2010;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn rng_for(seed: u64, tag: u64, n: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(seed ^ splitmix64(tag.wrapping_mul(0x1000_0001) ^ n)))
}

/// Turns sequence numbers into pseudonymous ids: a keyed 4-round Feistel permutation of 48-bit
/// numbers, so ids are unique, look random and reveal nothing about generation order.
struct Pseudonym {
    keys: [u64; 4],
}

impl Pseudonym {
    fn new(seed: u64, domain: u64) -> Pseudonym {
        let base = splitmix64(seed ^ domain.wrapping_mul(0xA24B_AED4_963E_E407));
        Pseudonym { keys: std::array::from_fn(|i| splitmix64(base.wrapping_add(i as u64))) }
    }

    fn id(&self, seq: u64) -> i64 {
        const MASK: u64 = (1 << 24) - 1;
        debug_assert!(seq < 1 << 48);
        let (mut left, mut right) = ((seq >> 24) & MASK, seq & MASK);
        for key in self.keys {
            let f = splitmix64(right ^ key) & MASK;
            (left, right) = (right, left ^ f);
        }
        ((left << 24) | right) as i64 + 1
    }
}

const PERSON: u64 = 1;
const FAMILY: u64 = 2;
const HOUSEHOLD: u64 = 3;
const JOB: u64 = 4;
const COURSE: u64 = 5;
const COMPANY: u64 = 6;

fn day(year: i32, month: u32, d: u32) -> i32 {
    Date::from_ymd(year, month, d).expect("valid date").epoch_days()
}

fn jan1(year: i32) -> i32 {
    day(year, 1, 1)
}

fn dec31(year: i32) -> i32 {
    day(year, 12, 31)
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// Index drawn with probability proportional to the weights behind a cumulative sum.
fn pick(cumulative: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let x = rng.random::<f64>() * cumulative[cumulative.len() - 1];
    cumulative.partition_point(|&c| c <= x).min(cumulative.len() - 1)
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

/// Employers, shared by every chunk.
pub struct Companies {
    ids: Vec<i64>,
    nace: Vec<u8>,
    municipality: Vec<u8>,
    founded: Vec<i32>,
    size: Vec<f64>,
    cumulative: Vec<f64>,
    employees_per_weight: f64,
}

impl Companies {
    pub fn generate(seed: u64, persons: u64) -> Companies {
        let n = (persons / 20).max(50) as usize;
        let mut rng = rng_for(seed, COMPANY, 0);
        let pseudonym = Pseudonym::new(seed, COMPANY);
        let nace_weights = cumulative(NACE.iter().map(|n| n.3));
        let muni_weights = cumulative(MUNICIPALITIES.iter().map(|m| m.weight));
        let mut c = Companies {
            ids: Vec::with_capacity(n),
            nace: Vec::with_capacity(n),
            municipality: Vec::with_capacity(n),
            founded: Vec::with_capacity(n),
            size: Vec::with_capacity(n),
            cumulative: Vec::new(),
            employees_per_weight: 0.0,
        };
        for i in 0..n {
            c.ids.push(pseudonym.id(i as u64));
            c.nace.push(pick(&nace_weights, &mut rng) as u8);
            c.municipality.push(pick(&muni_weights, &mut rng) as u8);
            c.founded
                .push(day(1950, 1, 1) + rng.random_range(0..(day(2014, 12, 31) - day(1950, 1, 1))));
            // Pareto-distributed sizes: many small firms, a few very large employers.
            c.size.push((1.0 - rng.random::<f64>()).powf(-1.0 / 1.1));
        }
        c.cumulative = cumulative(c.size.iter().copied());
        // About half the population is employed at any time.
        c.employees_per_weight = persons as f64 * 0.5 / c.cumulative[n - 1];
        c
    }

    fn wage_factor(&self, company: usize) -> f64 {
        NACE[self.nace[company] as usize].4
    }

    pub fn write(&self, out: &mut PartWriters<'_>, seed: u64) -> Result<(), DatastoreError> {
        let mut order: Vec<usize> = (0..self.ids.len()).collect();
        order.sort_by_key(|&i| self.ids[i]);
        let mut rng = rng_for(seed, COMPANY, 1);
        for i in order {
            let id = self.ids[i];
            let nace = NACE[self.nace[i] as usize];
            let (orgform, sector) = match nace.0 {
                "84.110" => ("STAT", "6100"),
                "85.201" | "87.101" => ("KOMM", "6500"),
                "86.101" => ("STAT", "6100"),
                _ if self.size[i] < 1.3 && rng.random::<f64>() < 0.5 => ("ENK", "8200"),
                _ if self.size[i] > 50.0 => ("ASA", "2100"),
                _ if rng.random::<f64>() < 0.05 => ("ANS", "2100"),
                _ => ("AS", "2100"),
            };
            out.push(Var::ForetakNace, id, Cell::Str(nace.0), None, None)?;
            let muni = &MUNICIPALITIES[self.municipality[i] as usize];
            out.push(Var::ForetakKommnr, id, Cell::Str(muni.code_in(LAST_YEAR)), None, None)?;
            out.push(Var::ForetakOrgform, id, Cell::Str(orgform), None, None)?;
            out.push(Var::ForetakSektor, id, Cell::Str(sector), None, None)?;
            out.push(Var::ForetakStiftet, id, Cell::Date(self.founded[i]), None, None)?;
            let employees = self.size[i] * self.employees_per_weight;
            for year in JOBS_FROM..=LAST_YEAR {
                let growth = 1.0 + 0.02 * f64::from(year - JOBS_FROM) + 0.08 * normal(&mut rng);
                let count = (employees * growth).round().max(1.0) as i64;
                out.push(
                    Var::ForetakAnsatte,
                    id,
                    Cell::Long(count),
                    Some(jan1(year)),
                    Some(jan1(year)),
                )?;
                let turnover =
                    count as f64 * 1_900.0 * nace.4 * (1.0 + 0.25 * normal(&mut rng)).max(0.2);
                let (start, stop) = (Some(jan1(year)), Some(dec31(year)));
                out.push(
                    Var::ForetakOmsetning,
                    id,
                    Cell::Long(turnover.round() as i64),
                    start,
                    stop,
                )?;
            }
        }
        Ok(())
    }
}

/// Municipality units, keyed by their numeric code.
pub fn write_municipalities(out: &mut PartWriters<'_>) -> Result<(), DatastoreError> {
    let mut rows: Vec<(i64, usize)> = Vec::new();
    for (i, m) in MUNICIPALITIES.iter().enumerate() {
        for &(code, _) in m.codes {
            rows.push((code.parse().expect("numeric municipality code"), i));
        }
    }
    rows.sort_unstable();
    for (id, i) in rows {
        let m = &MUNICIPALITIES[i];
        let centrality = match m.weight {
            w if w >= 200.0 => "1",
            w if w >= 90.0 => "2",
            w if w >= 45.0 => "3",
            w if w >= 20.0 => "4",
            w if w >= 5.0 => "5",
            _ => "6",
        };
        out.push(Var::KommuneSentralitet, id, Cell::Str(centrality), None, None)?;
        // A plausible area: larger for smaller (more rural) municipalities.
        let area = 40.0 + 2_500.0 / m.weight.sqrt() + (id % 97) as f64 * 3.1;
        out.push(Var::KommuneAreal, id, Cell::Double((area * 10.0).round() / 10.0), None, None)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// The woman of a couple, or the adult of a single-adult group.
    Anchor,
    /// The man of a couple.
    Partner,
    Child,
}

/// A stretch of education: a course in the registers once it starts after 1999.
#[derive(Clone, Copy, Debug)]
struct Stage {
    nus: u8,
    start_year: i32,
    end_year: i32,
    completed: bool,
}

struct Person {
    seq: u64,
    id: i64,
    group: usize,
    role: Role,
    male: bool,
    birth: i32,
    birth_year: i32,
    birth_month: u32,
    death: Option<i32>,
    emigration: Option<i32>,
    arrival: Option<i32>,
    country: Option<usize>,
    category: &'static str,
    mother: Option<i64>,
    father: Option<i64>,
    ability: f64,
    level: u8,
    stages: Vec<Stage>,
    /// Children: the year they leave home.
    leave_year: i32,
    birth_municipality: Option<usize>,
    /// Marriage and divorce years of persons whose spouse is outside the data.
    own_marriage: Option<i32>,
    own_divorce: Option<i32>,
    in_population: bool,
}

impl Person {
    fn resident_on(&self, d: i32) -> bool {
        self.birth <= d
            && self.death.is_none_or(|x| x > d)
            && self.emigration.is_none_or(|x| x > d)
            && self.arrival.is_none_or(|a| a <= d)
    }

    fn status_on(&self, d: i32) -> Option<&'static str> {
        if self.birth > d || self.arrival.is_some_and(|a| a > d) {
            None
        } else if self.death.is_some_and(|x| x <= d) {
            Some("3")
        } else if self.emigration.is_some_and(|x| x <= d) {
            Some("2")
        } else {
            Some("1")
        }
    }

    /// The date residence ends, if it does within the period.
    fn exit(&self) -> Option<i32> {
        match (self.death, self.emigration) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn age_at_year_start(&self, year: i32) -> i32 {
        year - self.birth_year - 1 + i32::from(self.birth_month == 1)
    }

    fn highest_completed(&self, year: i32) -> u8 {
        // Compulsory school is completed the June a person turns 16.
        let mut best = if year >= self.birth_year + 16 { 2 } else { 1 };
        for s in &self.stages {
            if s.completed && s.end_year <= year && NUS[s.nus as usize].3 >= NUS[best as usize].3 {
                best = s.nus;
            }
        }
        best
    }

    fn education_years(&self) -> f64 {
        match self.level {
            0..=2 => 0.0,
            3 => 1.0,
            4 => 3.0,
            5 => 5.0,
            6 => 6.0,
            7 => 8.0,
            _ => 12.0,
        }
    }

    fn education_end_year(&self) -> i32 {
        self.stages
            .iter()
            .filter(|s| s.completed)
            .map(|s| s.end_year)
            .max()
            .unwrap_or(self.birth_year + 16)
    }
}

struct Group {
    seq: u64,
    anchor: usize,
    partner: Option<usize>,
    children: Vec<usize>,
    union_year: i32,
    marriage_year: Option<i32>,
    /// Separation takes effect after 1 January of this year.
    split_year: Option<i32>,
    /// Municipality index of the family home on 1 January of each year.
    home: [u8; YEARS],
}

/// One chunk of the population.
pub struct Chunk {
    seed: u64,
    persons: Vec<Person>,
    groups: Vec<Group>,
}

struct Weights {
    municipality: Vec<f64>,
    country: Vec<f64>,
}

impl Chunk {
    /// Builds family groups until exactly `target` persons belong to the population.
    pub fn generate(seed: u64, chunk: usize, target: u64) -> Chunk {
        let mut rng = rng_for(seed, PERSON, chunk as u64);
        let weights = Weights {
            municipality: cumulative(MUNICIPALITIES.iter().map(|m| m.weight)),
            country: cumulative(codes::COUNTRIES.iter().map(|c| c.3)),
        };
        let pseudonym = Pseudonym::new(seed, PERSON);
        let mut c = Chunk { seed, persons: Vec::new(), groups: Vec::new() };
        let mut counted = 0;
        while counted < target {
            // A group adds at most eight persons; near the end, single adults fill up exactly.
            let single_only = target - counted < 8;
            counted += c.add_group(&mut rng, &weights, &pseudonym, chunk, single_only);
        }
        c
    }

    fn new_person(
        &mut self,
        chunk: usize,
        pseudonym: &Pseudonym,
        group: usize,
        role: Role,
    ) -> usize {
        let seq = ((chunk as u64) << 24) | self.persons.len() as u64;
        self.persons.push(Person {
            seq,
            id: pseudonym.id(seq),
            group,
            role,
            male: false,
            birth: 0,
            birth_year: 0,
            birth_month: 1,
            death: None,
            emigration: None,
            arrival: None,
            country: None,
            category: "A",
            mother: None,
            father: None,
            ability: 0.0,
            level: 2,
            stages: Vec::new(),
            leave_year: i32::MAX,
            birth_municipality: None,
            own_marriage: None,
            own_divorce: None,
            in_population: false,
        });
        self.persons.len() - 1
    }

    fn add_group(
        &mut self,
        rng: &mut ChaCha8Rng,
        weights: &Weights,
        pseudonym: &Pseudonym,
        chunk: usize,
        single_only: bool,
    ) -> u64 {
        let g = self.groups.len();
        let couple = !single_only && rng.random::<f64>() < 0.72;
        let immigrant = rng.random::<f64>() < 0.15;
        let anchor_year = loop {
            let y = rng.random_range(1915..=2005);
            let w = if y < 1935 {
                0.35
            } else if y < 1945 {
                0.8
            } else {
                1.0
            };
            if rng.random::<f64>() < w {
                break y;
            }
        };
        let anchor = self.new_person(chunk, pseudonym, g, Role::Anchor);
        let anchor_male = !couple && rng.random::<f64>() < 0.5;
        self.set_birth(anchor, anchor_year, anchor_male, rng);
        let partner = couple.then(|| {
            let p = self.new_person(chunk, pseudonym, g, Role::Partner);
            let year = (anchor_year + (2.5 + 3.0 * normal(rng)).round() as i32).clamp(1900, 2006);
            self.set_birth(p, year, true, rng);
            p
        });
        let home_start = pick(&weights.municipality, rng);
        let mut home = [home_start as u8; YEARS];
        let mut current = home_start;
        for slot in home.iter_mut().skip(1) {
            if rng.random::<f64>() < 0.035 {
                current = pick(&weights.municipality, rng);
            }
            *slot = current as u8;
        }

        // Union, marriage, separation.
        let union_year = anchor_year + 21 + (exponential(rng, 5.0) as i32).min(24);
        let mut marriage_year = None;
        let mut split_year = None;
        if couple {
            if rng.random::<f64>() < 0.62 {
                let m = union_year + exponential(rng, 3.0) as i32;
                marriage_year = Some(m);
                if rng.random::<f64>() < 0.3 {
                    split_year = Some(m + 2 + exponential(rng, 10.0) as i32);
                }
            } else if rng.random::<f64>() < 0.35 {
                split_year = Some(union_year + 1 + exponential(rng, 6.0) as i32);
            }
        } else if rng.random::<f64>() < 0.3 {
            self.persons[anchor].own_divorce = Some(anchor_year + 35 + rng.random_range(0..15));
            self.persons[anchor].own_marriage = Some(anchor_year + 27);
        }

        // Children.
        let n_children = if couple {
            pick(&cumulative([0.13, 0.17, 0.40, 0.21, 0.07, 0.02].into_iter()), rng)
        } else if !anchor_male && !single_only && rng.random::<f64>() < 0.25 {
            1 + usize::from(rng.random::<f64>() < 0.4)
        } else {
            0
        };
        let mut children = Vec::new();
        let mut year = union_year + 1;
        for _ in 0..n_children {
            year += exponential(rng, 2.0) as i32;
            if year > anchor_year + 44 || year > LAST_YEAR {
                break;
            }
            let child = self.new_person(chunk, pseudonym, g, Role::Child);
            self.set_birth(child, year, rng.random::<f64>() < 0.513, rng);
            let leave = 19 + exponential(rng, 2.5).min(12.0) as i32;
            let mother = (!anchor_male).then_some(self.persons[anchor].id);
            let father = partner.map(|f| self.persons[f].id);
            let p = &mut self.persons[child];
            p.leave_year = year + leave;
            p.mother = mother;
            p.father = father;
            if rng.random::<f64>() < 0.45 {
                let m = year + 27 + rng.random_range(0..12);
                p.own_marriage = Some(m);
                if rng.random::<f64>() < 0.2 {
                    p.own_divorce = Some(m + 3 + rng.random_range(0..10));
                }
            }
            children.push(child);
            year += 1;
        }

        // Immigration: the adults arrive together; children born before arrival come with them.
        if immigrant {
            let country = pick(&weights.country, rng);
            let adult_year =
                anchor_year.max(partner.map_or(anchor_year, |p| self.persons[p].birth_year));
            let earliest = (adult_year + 18).max(1970);
            if earliest <= LAST_YEAR {
                let arrival_year = earliest
                    + (f64::from(LAST_YEAR - earliest + 1) * rng.random::<f64>().sqrt()) as i32;
                let arrival_year = arrival_year.min(LAST_YEAR);
                let arrival = jan1(arrival_year) + rng.random_range(0..365);
                for &p in std::iter::once(&anchor).chain(partner.iter()) {
                    let person = &mut self.persons[p];
                    person.arrival = Some(arrival);
                    person.country = Some(country);
                    person.category = "B";
                }
                for &c in &children {
                    let person = &mut self.persons[c];
                    if person.birth < arrival {
                        person.arrival = Some(arrival);
                        person.country = Some(country);
                        person.category = "B";
                    } else {
                        person.category = "C";
                    }
                }
            }
        }

        // Education: children inherit part of their parents' ability.
        let parents_ability = (self.persons[anchor].ability
            + partner.map_or(self.persons[anchor].ability, |p| self.persons[p].ability))
            / 2.0;
        let parents_level =
            f64::from(self.persons[anchor].level.max(partner.map_or(0, |p| self.persons[p].level)));
        for &c in &children {
            self.persons[c].ability = 0.5 * parents_ability + 0.75f64.sqrt() * normal(rng);
        }
        for p in std::iter::once(anchor).chain(partner).chain(children.iter().copied()) {
            let parent_effect = if self.persons[p].role == Role::Child {
                0.25 * (parents_level - 4.0)
            } else {
                0.0
            };
            self.assign_education(p, parent_effect, rng);
            if self.persons[p].arrival.is_none() && self.persons[p].birth >= jan1(FIRST_YEAR - 60) {
                let born_here = if self.persons[p].role == Role::Child {
                    home[((self.persons[p].birth_year - FIRST_YEAR).clamp(0, YEARS as i32 - 1))
                        as usize] as usize
                } else {
                    pick(&weights.municipality, rng)
                };
                self.persons[p].birth_municipality = Some(born_here);
            }
            // A few emigrate for good.
            if rng.random::<f64>() < 0.03 {
                let from = (self.persons[p].birth + 18 * 365).max(jan1(FIRST_YEAR));
                if from < dec31(LAST_YEAR) {
                    self.persons[p].emigration = Some(rng.random_range(from..dec31(LAST_YEAR)));
                }
            }
        }

        let members: Vec<usize> =
            std::iter::once(anchor).chain(partner).chain(children.iter().copied()).collect();
        let mut counted = 0;
        for &p in &members {
            let person = &mut self.persons[p];
            let resident_sometime = (FIRST_YEAR..=LAST_YEAR).any(|y| person.resident_on(jan1(y)));
            let born_in_period = person.birth_year >= FIRST_YEAR && person.birth_year <= LAST_YEAR;
            person.in_population =
                resident_sometime || (born_in_period && person.arrival.is_none());
            counted += u64::from(person.in_population);
        }
        self.groups.push(Group {
            seq: self.persons[anchor].seq,
            anchor,
            partner,
            children,
            union_year,
            marriage_year,
            split_year,
            home,
        });
        counted
    }

    fn set_birth(&mut self, p: usize, year: i32, male: bool, rng: &mut ChaCha8Rng) {
        let month = rng.random_range(1..=12u32);
        let dom = rng.random_range(1..=shared::date::days_in_month(year, month));
        let birth = day(year, month, dom);
        // Gompertz mortality: the hazard grows about 10 % a year of age; men die earlier.
        let (a, b) = (if male { 4.0e-5 } else { 2.5e-5 }, 0.095);
        let u: f64 = 1.0 - rng.random::<f64>();
        let age_at_death = (1.0 - (b / a) * u.ln()).ln() / b;
        let death = birth + (age_at_death * 365.25) as i32;
        let person = &mut self.persons[p];
        person.male = male;
        person.birth = birth;
        person.birth_year = year;
        person.birth_month = month;
        person.death = (death <= dec31(LAST_YEAR)).then_some(death);
        person.ability = normal(rng);
    }

    fn assign_education(&mut self, p: usize, parent_effect: f64, rng: &mut ChaCha8Rng) {
        let person = &mut self.persons[p];
        let cohort = 0.025 * f64::from(person.birth_year - 1960);
        let score = person.ability * 0.8 + cohort + parent_effect + 0.5 * normal(rng);
        person.level = match score {
            s if s < -0.9 => 2,
            s if s < -0.65 => 3,
            s if s < 0.35 => 4,
            s if s < 0.5 => 5,
            s if s < 1.2 => 6,
            s if s < 2.15 => 7,
            _ => 8,
        };
        let y16 = person.birth_year + 16;
        let mut stages = Vec::new();
        let mut t = y16;
        let level = person.level;
        if level == 3 {
            let nus = if rng.random::<f64>() < 0.5 { 3 } else { 4 };
            stages.push(Stage { nus, start_year: t, end_year: t + 1, completed: true });
            t += 1;
        }
        if level >= 4 {
            let (nus, length) = if level >= 5 || rng.random::<f64>() < 0.45 {
                (5, 3)
            } else {
                (rng.random_range(6..=8), 4)
            };
            stages.push(Stage { nus, start_year: t, end_year: t + length, completed: true });
            t += length + if rng.random::<f64>() < 0.5 { 0 } else { rng.random_range(1..=3) };
        }
        if level == 5 {
            stages.push(Stage {
                nus: rng.random_range(9..=10),
                start_year: t,
                end_year: t + 2,
                completed: true,
            });
            t += 2;
        }
        let field = rng.random_range(0..5u8);
        if level >= 6 {
            stages.push(Stage { nus: 11 + field, start_year: t, end_year: t + 3, completed: true });
            t += 3 + i32::from(rng.random::<f64>() < 0.3);
        }
        if level >= 7 {
            stages.push(Stage { nus: 16 + field, start_year: t, end_year: t + 2, completed: true });
            t += 2 + rng.random_range(0..=2);
        }
        if level == 8 {
            stages.push(Stage {
                nus: 21 + field % 3,
                start_year: t,
                end_year: t + 4,
                completed: true,
            });
            t += 4;
        }
        // Some start the next level and drop out after a year.
        if level < 8 && rng.random::<f64>() < 0.12 {
            let nus = match level {
                2 => 3,
                3 => 5,
                4 | 5 => 11 + field,
                6 => 16 + field,
                _ => 21 + field % 3,
            };
            stages.push(Stage { nus, start_year: t, end_year: t + 1, completed: false });
        }
        person.stages = stages;
    }

    fn anchor_of(&self, p: &Person) -> &Person {
        &self.persons[self.groups[p.group].anchor]
    }

    /// Whether person `p` lives in its group's core family on 1 January of `year`.
    fn in_core(&self, p: &Person, year: i32) -> bool {
        let g = &self.groups[p.group];
        let d = jan1(year);
        match p.role {
            Role::Anchor => true,
            Role::Partner => g.union_year < year && g.split_year.is_none_or(|s| year <= s),
            Role::Child => {
                year < p.leave_year
                    && (self.persons[g.anchor].resident_on(d)
                        || g.partner.is_some_and(|m| {
                            let man = &self.persons[m];
                            man.resident_on(d) && self.in_core(man, year)
                        }))
            }
        }
    }

    /// Members, children under 18, the youngest child's age and whether a grown child lives at
    /// home, for the core family of group `g` on 1 January of `year`.
    fn core_state(&self, g: usize, year: i32) -> CoreState {
        let group = &self.groups[g];
        let d = jan1(year);
        let mut state = CoreState::default();
        for &p in std::iter::once(&group.anchor).chain(group.partner.iter()) {
            let person = &self.persons[p];
            if person.resident_on(d) && self.in_core(person, year) {
                state.adults += 1;
                state.male_adult |= person.male;
            }
        }
        for &c in &group.children {
            let child = &self.persons[c];
            if child.resident_on(d) && self.in_core(child, year) {
                let age = child.age_at_year_start(year);
                if age < 18 {
                    state.children_0_17 += 1;
                    state.youngest = state.youngest.min(age);
                } else {
                    state.grown_children += 1;
                }
            }
        }
        state.married = state.adults == 2
            && group.marriage_year.is_some_and(|m| m < year)
            && group.split_year.is_none_or(|s| year <= s);
        state
    }

    fn marital_status(&self, p: &Person, year: i32) -> &'static str {
        if p.age_at_year_start(year) < 18 {
            return "1";
        }
        let g = &self.groups[p.group];
        let own = |marriage: Option<i32>, divorce: Option<i32>| match (marriage, divorce) {
            (_, Some(dv)) if dv < year => "4",
            (Some(m), _) if m < year => "2",
            _ => "1",
        };
        match (p.role, g.partner) {
            (Role::Child, _) | (_, None) => own(p.own_marriage, p.own_divorce),
            (_, Some(partner)) => {
                let spouse = if p.role == Role::Anchor {
                    &self.persons[partner]
                } else {
                    &self.persons[g.anchor]
                };
                match g.marriage_year {
                    Some(m) if m < year => {
                        if g.split_year.is_some_and(|s| s < year) {
                            "4"
                        } else if spouse.death.is_some_and(|x| x < jan1(year)) {
                            "3"
                        } else {
                            "2"
                        }
                    }
                    _ => "1",
                }
            }
        }
    }

    /// Writes every row of this chunk and returns how many persons are in the population.
    pub fn write(
        &self,
        out: &mut PartWriters<'_>,
        companies: &Companies,
    ) -> Result<u64, DatastoreError> {
        let pseudo_family = Pseudonym::new(self.seed, FAMILY);
        let pseudo_household = Pseudonym::new(self.seed, HOUSEHOLD);
        let pseudo_job = Pseudonym::new(self.seed, JOB);
        let pseudo_course = Pseudonym::new(self.seed, COURSE);
        let muni_weights = cumulative(MUNICIPALITIES.iter().map(|m| m.weight));

        let mut order: Vec<usize> =
            (0..self.persons.len()).filter(|&i| self.persons[i].in_population).collect();
        order.sort_by_key(|&i| self.persons[i].id);

        let mut memberships: Vec<Membership> = Vec::new();
        let mut jobs: Vec<JobRecord> = Vec::new();
        let mut courses: Vec<CourseRecord> = Vec::new();
        for &i in &order {
            let p = &self.persons[i];
            let mut sim = PersonYears {
                chunk: self,
                p,
                rng: rng_for(self.seed, PERSON + 100, p.seq),
                out: &mut *out,
                companies,
                muni_weights: &muni_weights,
                memberships: &mut memberships,
                jobs: &mut jobs,
                pseudo_family: &pseudo_family,
                pseudo_household: &pseudo_household,
                pseudo_job: &pseudo_job,
            };
            sim.run()?;
            self.collect_courses(p, &pseudo_course, &mut courses);
        }
        write_jobs(out, jobs)?;
        write_courses(out, courses)?;
        write_families(out, memberships, &pseudo_family, &pseudo_household)?;
        Ok(order.len() as u64)
    }

    fn collect_courses(&self, p: &Person, pseudonym: &Pseudonym, out: &mut Vec<CourseRecord>) {
        for (k, s) in p.stages.iter().enumerate() {
            let start = day(s.start_year, 8, 15);
            let end = day(s.end_year, 6, 15);
            let exit = p.exit();
            let arrived = p.arrival.is_none_or(|a| a <= start);
            if s.end_year < FIRST_YEAR
                || start > day(LAST_YEAR, 10, 1)
                || !arrived
                || exit.is_some_and(|x| x <= start)
            {
                continue;
            }
            let (stop, completion) = match exit {
                Some(x) if x < end => (Some(x), "2"),
                _ if end > dec31(LAST_YEAR) => (None, "3"),
                _ => (Some(end), if s.completed { "1" } else { "2" }),
            };
            let level = NUS[s.nus as usize].3;
            let credits = (level >= 6).then(|| {
                let years = f64::from(s.end_year - s.start_year);
                if s.completed { years * 60.0 } else { 30.0 }
            });
            // Universities sit in the larger cities; upper secondary schools near home.
            let municipality = if level >= 5 {
                (p.seq as usize + k) % 4
            } else {
                (p.seq as usize * 7 + k) % MUNICIPALITIES.len()
            };
            out.push(CourseRecord {
                id: pseudonym.id((p.seq << 4) | k as u64),
                person: p.id,
                nus: s.nus,
                start,
                stop,
                completion,
                municipality: MUNICIPALITIES[municipality]
                    .code_in(s.start_year.clamp(FIRST_YEAR, LAST_YEAR)),
                credits,
            });
        }
    }
}

struct CoreState {
    adults: u8,
    male_adult: bool,
    children_0_17: u8,
    grown_children: u8,
    youngest: i32,
    married: bool,
}

impl Default for CoreState {
    fn default() -> CoreState {
        // `youngest` starts above any child's age so that `min` finds the youngest.
        CoreState {
            adults: 0,
            male_adult: false,
            children_0_17: 0,
            grown_children: 0,
            youngest: 99,
            married: false,
        }
    }
}

impl CoreState {
    fn family_type(&self, anchor_male: bool) -> &'static str {
        match (self.adults, self.children_0_17 > 0) {
            (2, false) if self.married => "2.1",
            (2, true) if self.married => "2.2",
            (2, false) => "3.1",
            (2, true) => "3.2",
            (_, true) if anchor_male || (self.male_adult && self.adults == 1) => "4.2",
            (_, true) => "4.1",
            _ => "1.1",
        }
    }

    fn household_type(&self) -> &'static str {
        let members =
            u32::from(self.adults) + u32::from(self.children_0_17) + u32::from(self.grown_children);
        if self.grown_children > 0 {
            "6"
        } else if members <= 1 {
            "1"
        } else if self.adults >= 2 && self.children_0_17 == 0 {
            "2"
        } else if self.adults >= 2 && self.youngest <= 5 {
            "3"
        } else if self.adults >= 2 {
            "4"
        } else {
            "5"
        }
    }
}

/// One person's membership of a family in one year, aggregated into the family units.
struct Membership {
    family_seq: u64,
    year: i32,
    child_0_17: bool,
    income: i64,
    family_type: &'static str,
    household_type: &'static str,
}

struct JobRecord {
    id: i64,
    person: i64,
    /// Index into [`Companies`], for the industry's wage level.
    company: usize,
    company_id: i64,
    kind: &'static str,
    percent: f64,
    occupation: &'static str,
    contract: &'static str,
    start: i32,
    stop: Option<i32>,
    wages: Vec<(i32, i64)>,
}

struct CourseRecord {
    id: i64,
    person: i64,
    nus: u8,
    start: i32,
    stop: Option<i32>,
    completion: &'static str,
    municipality: &'static str,
    credits: Option<f64>,
}

/// A person's years, simulated in order, with their rows written as they are decided.
struct PersonYears<'a, 'w> {
    chunk: &'a Chunk,
    p: &'a Person,
    rng: ChaCha8Rng,
    out: &'a mut PartWriters<'w>,
    companies: &'a Companies,
    muni_weights: &'a [f64],
    memberships: &'a mut Vec<Membership>,
    jobs: &'a mut Vec<JobRecord>,
    pseudo_family: &'a Pseudonym,
    pseudo_household: &'a Pseudonym,
    pseudo_job: &'a Pseudonym,
}

impl PersonYears<'_, '_> {
    fn run(&mut self) -> Result<(), DatastoreError> {
        let p = self.p;
        let id = p.id;
        self.write_fixed()?;
        let g = &self.chunk.groups[p.group];
        let person_effect = 0.25 * normal(&mut self.rng);
        let wealth_effect = 0.5 * normal(&mut self.rng);
        let has_debt = self.rng.random::<f64>() < 0.75;
        let self_employed = self.rng.random::<f64>() < 0.06;
        let part_time = !p.male && self.rng.random::<f64>() < 0.25;
        let retire_age = 62 + self.rng.random_range(0..=5);
        let mut own_home: Option<usize> = None;
        let mut job: Option<JobRecord> = None;
        let mut job_count = 0u64;
        let mut aap_until = i32::MIN;

        for year in FIRST_YEAR..=LAST_YEAR {
            let y = (year - FIRST_YEAR) as usize;
            let d = jan1(year);
            let Some(status) = p.status_on(d) else { continue };
            self.out.push(Var::Statuskode, id, Cell::Str(status), Some(d), Some(d))?;
            let resident = status == "1";
            let age = p.age_at_year_start(year);

            // Education on 1 October.
            let oct1 = day(year, 10, 1);
            if p.resident_on(oct1) && p.age_at_year_start(year) >= 16 {
                let nus = NUS[p.highest_completed(year) as usize].0;
                self.out.push(Var::Bu, id, Cell::Str(nus), Some(oct1), Some(oct1))?;
            }
            if !resident {
                if let Some(mut j) = job.take() {
                    j.stop = Some(p.exit().unwrap_or(d).max(j.start));
                    self.jobs.push(j);
                }
                continue;
            }

            // Where and with whom the person lives.
            let core = self.chunk.in_core(p, year);
            let municipality = if core {
                own_home = None;
                g.home[y] as usize
            } else {
                let current =
                    *own_home.get_or_insert_with(|| pick(self.muni_weights, &mut self.rng));
                if self.rng.random::<f64>() < 0.05 {
                    own_home = Some(pick(self.muni_weights, &mut self.rng));
                }
                current
            };
            let muni = &MUNICIPALITIES[municipality];
            self.out.push(Var::Bosted, id, Cell::Str(muni.code_in(year)), Some(d), Some(d))?;
            self.out.push(Var::Fylke, id, Cell::Str(muni.county_in(year)), Some(d), Some(d))?;
            let marital = self.chunk.marital_status(p, year);
            self.out.push(Var::Sivstand, id, Cell::Str(marital), Some(d), Some(d))?;
            let (family_seq, state) = if core {
                (g.seq * 2 + 1, self.chunk.core_state(p.group, year))
            } else {
                (p.seq * 2, CoreState { adults: 1, ..CoreState::default() })
            };
            let family_id = self.pseudo_family.id(family_seq);
            let anchor_male = self.chunk.anchor_of(p).male && g.partner.is_none();
            let family_type = state.family_type(anchor_male);
            self.out.push(Var::Famnr, id, Cell::Long(family_id), Some(d), Some(d))?;
            self.out.push(Var::Famtyp, id, Cell::Str(family_type), Some(d), Some(d))?;
            if year >= HOUSEHOLDS_FROM {
                let household_id = self.pseudo_household.id(family_seq);
                self.out.push(Var::Hushnr, id, Cell::Long(household_id), Some(d), Some(d))?;
            }

            // Spells that start this year.
            let year_days = dec31(year) - d + 1;
            let exit = p.exit();
            let clip = |stop: i32| -> Option<i32> {
                let stop = exit.map_or(stop, |x| stop.min(x));
                (stop <= dec31(LAST_YEAR)).then_some(stop)
            };
            let student = p.stages.iter().any(|s| s.start_year <= year && year < s.end_year);
            let low_education = p.level <= 3;
            let recent_immigrant = p.arrival.is_some_and(|a| d - a < 5 * 365);
            let mut unemployed_days = 0;
            let mut aap_days = 0;
            let mut aap_rate = 0;
            let base_mu = self.wage_mu(year, person_effect);
            if (18..67).contains(&age) && !student {
                let risk = 0.025
                    + 0.03 * f64::from(u8::from(low_education))
                    + 0.03 * f64::from(u8::from(recent_immigrant));
                if self.rng.random::<f64>() < risk {
                    let start = d + self.rng.random_range(0..year_days);
                    let stop = start + 20 + exponential(&mut self.rng, 110.0) as i32;
                    let value = match self.rng.random::<f64>() {
                        u if u < 0.7 => "11",
                        u if u < 0.9 => "12",
                        _ => "13",
                    };
                    if exit.is_none_or(|x| x > start) {
                        self.out.push(
                            Var::Arbsokerstatus,
                            id,
                            Cell::Str(value),
                            Some(start),
                            clip(stop),
                        )?;
                        unemployed_days = (stop.min(dec31(year)) - start + 1).max(0);
                    }
                }
            }
            if year >= AAP_FROM && (25..63).contains(&age) && aap_until < d {
                let risk = 0.007 + 0.01 * f64::from(u8::from(low_education));
                if self.rng.random::<f64>() < risk {
                    let start = d.max(day(AAP_FROM, 3, 1)) + self.rng.random_range(0..200);
                    let stop = start + 180 + self.rng.random_range(0..900);
                    aap_rate =
                        ((0.66 * base_mu.exp() / 260.0).clamp(700.0, 2_600.0)).round() as i64;
                    if exit.is_none_or(|x| x > start) {
                        self.out.push(
                            Var::Aap,
                            id,
                            Cell::Long(aap_rate),
                            Some(start),
                            clip(stop),
                        )?;
                        aap_until = stop;
                        aap_days = (stop.min(dec31(year)) - start + 1).max(0);
                    }
                }
            } else if aap_until >= d {
                aap_days = (aap_until.min(dec31(year)) - d + 1).max(0);
                aap_rate = ((0.66 * base_mu.exp() / 260.0).clamp(700.0, 2_600.0)).round() as i64;
            }

            // Work.
            let retired = age >= retire_age;
            let employable = age >= 17 && !retired && aap_days < year_days / 2;
            let employed = employable && {
                let p_work = if student {
                    0.45
                } else {
                    0.93 - 0.10 * f64::from(u8::from(low_education))
                        - if p.male { 0.0 } else { 0.04 }
                        - 0.10 * f64::from(u8::from(recent_immigrant))
                        - if age < 20 { 0.3 } else { 0.0 }
                };
                self.rng.random::<f64>() < p_work
            };
            if employed {
                let switch = job.is_some() && self.rng.random::<f64>() < 0.10;
                if switch {
                    let mut j = job.take().expect("checked");
                    let end = (d + self.rng.random_range(0..year_days)).max(j.start);
                    j.stop = Some(end);
                    self.jobs.push(j);
                    job = Some(self.new_job(end + 1, student, part_time, &mut job_count));
                } else if job.is_none() {
                    let start = d + self.rng.random_range(0..180);
                    job = Some(self.new_job(start, student, part_time, &mut job_count));
                }
            } else if let Some(mut j) = job.take() {
                j.stop = Some((d - 1 - self.rng.random_range(0..120)).max(j.start));
                self.jobs.push(j);
            }
            if let Some(j) = &job
                && self.rng.random::<f64>() < 0.10
            {
                let start = d + self.rng.random_range(0..year_days);
                let stop = start + 17 + exponential(&mut self.rng, 40.0) as i32;
                let degree = if self.rng.random::<f64>() < 0.7 {
                    100.0
                } else {
                    [40.0, 50.0, 60.0][self.rng.random_range(0..3)]
                };
                if exit.is_none_or(|x| x > start) && j.start <= start {
                    self.out.push(
                        Var::Sykepenger,
                        id,
                        Cell::Double(degree),
                        Some(start),
                        clip(stop),
                    )?;
                }
            }

            // Income of the year.
            let inflation = 1.03f64.powi(year - 2015);
            let age_f = f64::from(age);
            let mut wage = 0.0;
            let full_wage = (base_mu + 0.12 * normal(&mut self.rng)).exp();
            if let Some(j) = &mut job {
                let worked = (dec31(year).min(exit.unwrap_or(i32::MAX)) - j.start.max(d) + 1)
                    .clamp(0, year_days);
                let factor = self.companies.wage_factor(j.company);
                wage = full_wage * factor * j.percent / 100.0 * f64::from(worked)
                    / f64::from(year_days)
                    * (1.0 - f64::from(unemployed_days) / f64::from(year_days));
                if self_employed {
                    wage *= 0.4;
                }
                if year >= JOBS_FROM {
                    j.wages.push((year, wage.round() as i64));
                }
            }
            let business = if self_employed && (20..71).contains(&age) {
                (12.2 + 0.2 * p.ability + 0.7 * normal(&mut self.rng)).exp() * inflation
            } else {
                0.0
            };
            let pension = if age >= retire_age.max(62) {
                (0.55 * self.wage_mu(year.min(p.birth_year + 60), person_effect).exp())
                    .max(210_000.0 * inflation)
            } else {
                0.0
            };
            let children_0_17 =
                if core && p.role != Role::Child && (p.role == Role::Anchor || g.partner.is_none())
                {
                    f64::from(state.children_0_17)
                } else {
                    0.0
                };
            let transfers = 0.624 * full_wage * f64::from(unemployed_days) / 365.0
                + aap_rate as f64 * f64::from(aap_days) * 5.0 / 7.0
                + 12_000.0 * children_0_17;
            let capital = if age >= 17 && self.rng.random::<f64>() < 0.85 {
                (7.5 + 0.035 * age_f + 0.3 * p.ability + 1.4 * normal(&mut self.rng)).exp()
            } else {
                0.0
            };
            let earned = wage.round() + business.round();
            let total = earned + capital.round() + pension.round() + transfers.round();
            if age >= 17 {
                let (start, stop) = (Some(d), Some(dec31(year)));
                let tax = 0.22 * (total - 80_000.0 * inflation).max(0.0)
                    + 0.017 * (total - 210_000.0 * inflation).max(0.0)
                    + 0.04 * (total - 300_000.0 * inflation).max(0.0)
                    + 0.135 * (total - 690_000.0 * inflation).max(0.0)
                    + 0.078 * earned;
                let wealth = (10.5
                    + 0.06 * (age_f - 17.0).min(50.0)
                    + 0.4 * p.ability
                    + wealth_effect
                    + 0.2 * normal(&mut self.rng))
                .exp()
                    * inflation;
                let debt = if has_debt && (22..76).contains(&age) {
                    (13.8 - ((age_f - 38.0) / 18.0).powi(2)
                        + 0.3 * p.ability
                        + 0.3 * normal(&mut self.rng))
                    .exp()
                        * inflation
                } else {
                    0.0
                };
                for (var, value) in [
                    (Var::Wlonn, wage),
                    (Var::Wnarinnt, business),
                    (Var::Wyrkinnt, earned),
                    (Var::Wkapinnt, capital),
                    (Var::Wpensj, pension),
                    (Var::Woverf, transfers),
                    (Var::Wsaminnt, total),
                    (Var::Wskatt, tax),
                    (Var::Bruttoformue, wealth),
                    (Var::Gjeld, debt),
                ] {
                    self.out.push(var, id, Cell::Long(value.round() as i64), start, stop)?;
                }
            }
            self.memberships.push(Membership {
                family_seq,
                year,
                child_0_17: age < 18,
                income: if age >= 17 { total as i64 } else { 0 },
                family_type,
                household_type: state.household_type(),
            });
        }
        if let Some(mut j) = job.take() {
            j.stop = p.exit().map(|x| x.max(j.start));
            self.jobs.push(j);
        }
        Ok(())
    }

    /// Log of the full-time annual wage: education, experience, sex, ability and a person
    /// effect, with 3 % nominal growth a year (a Mincer equation).
    fn wage_mu(&self, year: i32, person_effect: f64) -> f64 {
        let p = self.p;
        let experience = f64::from((year - p.education_end_year()).max(0));
        12.35 + 0.09 * p.education_years() + 0.04 * experience - 0.0007 * experience * experience
            + if p.male { 0.13 } else { 0.0 }
            + 0.30 * p.ability
            + person_effect
            + 1.032f64.ln() * f64::from(year - 2015)
    }

    fn new_job(
        &mut self,
        start: i32,
        student: bool,
        part_time: bool,
        count: &mut u64,
    ) -> JobRecord {
        let p = self.p;
        let company = pick(&self.companies.cumulative, &mut self.rng);
        let level = p.level;
        let fitting: Vec<usize> =
            (0..OCCUPATIONS.len()).filter(|&i| OCCUPATIONS[i].3 <= level).collect();
        let best: Vec<usize> =
            fitting.iter().copied().filter(|&i| OCCUPATIONS[i].3 + 2 >= level).collect();
        let choices = if best.is_empty() { &fitting } else { &best };
        let occupation = OCCUPATIONS[choices[self.rng.random_range(0..choices.len())]].0;
        let percent = if student {
            30.0
        } else if part_time {
            [50.0, 60.0, 80.0][self.rng.random_range(0..3)]
        } else {
            100.0
        };
        let kind = match self.rng.random::<f64>() {
            u if u < 0.94 => "1",
            u if u < 0.96 => "2",
            _ => "3",
        };
        let contract = if student || self.rng.random::<f64>() < 0.1 { "M" } else { "F" };
        let seq = (p.seq << 6) | (*count).min(63);
        *count += 1;
        JobRecord {
            id: self.pseudo_job.id(seq),
            person: p.id,
            company,
            company_id: self.companies.ids[company],
            kind,
            percent,
            occupation,
            contract,
            start,
            stop: None,
            wages: Vec::new(),
        }
    }

    fn write_fixed(&mut self) -> Result<(), DatastoreError> {
        let p = self.p;
        let id = p.id;
        let out = &mut *self.out;
        out.push(Var::Kjoenn, id, Cell::Str(if p.male { "1" } else { "2" }), None, None)?;
        let ym = i64::from(p.birth_year) * 100 + i64::from(p.birth_month);
        out.push(Var::FoedselsAarMnd, id, Cell::Long(ym), None, None)?;
        if let Some(d) = p.death {
            out.push(Var::DoedsDato, id, Cell::Date(d), None, None)?;
        }
        if let Some(m) = p.mother {
            out.push(Var::MorFnr, id, Cell::Long(m), None, None)?;
        }
        if let Some(f) = p.father {
            out.push(Var::FarFnr, id, Cell::Long(f), None, None)?;
        }
        let country = p.country.map_or("000", |c| codes::COUNTRIES[c].0);
        out.push(Var::Fodeland, id, Cell::Str(country), None, None)?;
        out.push(Var::Invkat, id, Cell::Str(p.category), None, None)?;
        if let Some(m) = p.birth_municipality {
            let year = p.birth_year.clamp(FIRST_YEAR - 100, LAST_YEAR);
            out.push(
                Var::Foedekommune,
                id,
                Cell::Str(MUNICIPALITIES[m].code_in(year)),
                None,
                None,
            )?;
        }
        if let Some(a) = p.arrival {
            out.push(Var::Innvandringsdato, id, Cell::Date(a), None, None)?;
        }
        let first_higher = p
            .stages
            .iter()
            .filter(|s| s.completed && NUS[s.nus as usize].3 >= 5)
            .map(|s| s.end_year)
            .min();
        if let Some(y) = first_higher.filter(|&y| y <= LAST_YEAR) {
            out.push(Var::AarForsteFullfHov, id, Cell::Long(i64::from(y)), None, None)?;
        }
        if (2002..=LAST_YEAR).contains(&(p.birth_year + 16))
            && p.arrival.is_none_or(|a| a < day(p.birth_year + 16, 6, 1))
        {
            let female = if p.male { 0.0 } else { 2.0 };
            let points =
                (40.0 + 8.0 * p.ability + female + 3.0 * normal(&mut self.rng)).clamp(10.0, 60.0);
            out.push(
                Var::Grunnskolepoeng,
                id,
                Cell::Double((points * 10.0).round() / 10.0),
                None,
                None,
            )?;
        }
        Ok(())
    }
}

fn write_jobs(out: &mut PartWriters<'_>, mut jobs: Vec<JobRecord>) -> Result<(), DatastoreError> {
    let from = jan1(JOBS_FROM);
    jobs.retain(|j| j.stop.is_none_or(|s| s >= from));
    jobs.sort_unstable_by_key(|j| j.id);
    for j in &jobs {
        let id = j.id;
        let stop = j.stop.filter(|&s| s <= dec31(LAST_YEAR));
        out.push(Var::ArbFnr, id, Cell::Long(j.person), None, None)?;
        out.push(Var::ArbForetak, id, Cell::Long(j.company_id), None, None)?;
        out.push(Var::ArbType, id, Cell::Str(j.kind), None, None)?;
        out.push(Var::ArbStillingspst, id, Cell::Double(j.percent), Some(j.start), stop)?;
        out.push(Var::ArbTimer, id, Cell::Double(37.5 * j.percent / 100.0), Some(j.start), stop)?;
        out.push(Var::ArbYrke, id, Cell::Str(j.occupation), Some(j.start), stop)?;
        out.push(Var::ArbAnsettelsesform, id, Cell::Str(j.contract), Some(j.start), stop)?;
        for &(year, amount) in &j.wages {
            out.push(Var::LonnBelop, id, Cell::Long(amount), Some(jan1(year)), Some(dec31(year)))?;
        }
        out.push(Var::ArbStartdato, id, Cell::Date(j.start), None, None)?;
        if let Some(s) = stop {
            out.push(Var::ArbSluttdato, id, Cell::Date(s), None, None)?;
        }
    }
    Ok(())
}

fn write_courses(
    out: &mut PartWriters<'_>,
    mut courses: Vec<CourseRecord>,
) -> Result<(), DatastoreError> {
    courses.sort_unstable_by_key(|c| c.id);
    for c in &courses {
        out.push(Var::KursFnr, c.id, Cell::Long(c.person), None, None)?;
        out.push(Var::KursNus, c.id, Cell::Str(NUS[c.nus as usize].0), Some(c.start), c.stop)?;
        out.push(Var::KursFullfkode, c.id, Cell::Str(c.completion), Some(c.start), c.stop)?;
        out.push(Var::KursKommnr, c.id, Cell::Str(c.municipality), None, None)?;
        if let Some(credits) = c.credits {
            out.push(Var::KursStudiepoeng, c.id, Cell::Double(credits), None, None)?;
        }
    }
    Ok(())
}

/// Aggregates memberships into family and household units, written in id order.
fn write_families(
    out: &mut PartWriters<'_>,
    memberships: Vec<Membership>,
    family: &Pseudonym,
    household: &Pseudonym,
) -> Result<(), DatastoreError> {
    struct Unit {
        seq: u64,
        year: i32,
        persons: i64,
        children: i64,
        income: i64,
        family_type: &'static str,
        household_type: &'static str,
    }
    let mut units: Vec<Unit> = Vec::new();
    let mut sorted = memberships;
    sorted.sort_unstable_by_key(|m| (m.family_seq, m.year));
    for m in sorted {
        match units.last_mut() {
            Some(u) if u.seq == m.family_seq && u.year == m.year => {
                u.persons += 1;
                u.children += i64::from(m.child_0_17);
                u.income += m.income;
            }
            _ => units.push(Unit {
                seq: m.family_seq,
                year: m.year,
                persons: 1,
                children: i64::from(m.child_0_17),
                income: m.income,
                family_type: m.family_type,
                household_type: m.household_type,
            }),
        }
    }
    let mut by_family: Vec<(i64, usize)> =
        units.iter().enumerate().map(|(i, u)| (family.id(u.seq), i)).collect();
    by_family.sort_unstable();
    for &(id, i) in &by_family {
        let u = &units[i];
        let d = Some(jan1(u.year));
        out.push(Var::FamAntpers, id, Cell::Long(u.persons), d, d)?;
        out.push(Var::FamAntbarn, id, Cell::Long(u.children), d, d)?;
        out.push(Var::FamType, id, Cell::Str(u.family_type), d, d)?;
        out.push(Var::FamInntekt, id, Cell::Long(u.income), d, Some(dec31(u.year)))?;
    }
    let mut by_household: Vec<(i64, usize)> = units
        .iter()
        .enumerate()
        .filter(|(_, u)| u.year >= HOUSEHOLDS_FROM)
        .map(|(i, u)| (household.id(u.seq), i))
        .collect();
    by_household.sort_unstable();
    for &(id, i) in &by_household {
        let u = &units[i];
        let d = Some(jan1(u.year));
        out.push(Var::HushAntpers, id, Cell::Long(u.persons), d, d)?;
        out.push(Var::HushType, id, Cell::Str(u.household_type), d, d)?;
        out.push(Var::HushInntekt, id, Cell::Long(u.income), d, Some(dec31(u.year)))?;
    }
    Ok(())
}
