//! Code lists of the synthetic registers, modelled on Statistics Norway's classifications:
//! municipalities (with the 2018–2024 reforms as validity periods), NUS 2000 education codes,
//! NACE (SN2007) industries, STYRK-08 occupations, marital status, family and household types.

use shared::Date;
use shared::metadata::{Code, Localized};

/// A municipality with its code history: codes in force over consecutive periods.
pub struct Municipality {
    pub name: &'static str,
    /// Relative population weight: where people are born and move to.
    pub weight: f64,
    /// (code, first year in force); each code lasts until the next one starts.
    pub codes: &'static [(&'static str, i32)],
}

impl Municipality {
    /// The code in force on 1 January of `year`.
    pub fn code_in(&self, year: i32) -> &'static str {
        let mut code = self.codes[0].0;
        for &(c, from) in self.codes {
            if year >= from {
                code = c;
            }
        }
        code
    }

    /// County (fylke) code: the first two digits of the municipality code.
    pub fn county_in(&self, year: i32) -> &'static str {
        &self.code_in(year)[..2]
    }
}

macro_rules! municipality {
    ($name:literal, $weight:literal, [$(($code:literal, $from:literal)),+]) => {
        Municipality { name: $name, weight: $weight as f64, codes: &[$(($code, $from)),+] }
    };
}

/// A selection of Norwegian municipalities, weighted roughly by population, with the code
/// changes of the regional reforms (Trøndelag 2018; the 2020 reform; the 2024 reversals).
pub static MUNICIPALITIES: &[Municipality] = &[
    municipality!("Oslo", 700, [("0301", 1838)]),
    municipality!("Bergen", 285, [("1201", 1838), ("4601", 2020)]),
    municipality!("Trondheim", 210, [("1601", 1838), ("5001", 2018)]),
    municipality!("Stavanger", 145, [("1103", 1838)]),
    municipality!("Bærum", 128, [("0219", 1838), ("3024", 2020), ("3201", 2024)]),
    municipality!("Kristiansand", 115, [("1001", 1838), ("4204", 2020)]),
    municipality!("Drammen", 102, [("0602", 1838), ("3005", 2020), ("3301", 2024)]),
    municipality!("Asker", 96, [("0220", 1838), ("3025", 2020), ("3203", 2024)]),
    municipality!("Lillestrøm", 89, [("0230", 1838), ("3030", 2020), ("3205", 2024)]),
    municipality!("Fredrikstad", 84, [("0106", 1838), ("3004", 2020), ("3107", 2024)]),
    municipality!("Sandnes", 81, [("1102", 1838)]),
    municipality!("Tromsø", 77, [("1902", 1838), ("5401", 2020), ("5501", 2024)]),
    municipality!("Sandefjord", 65, [("0710", 1838), ("3804", 2020), ("3907", 2024)]),
    municipality!("Nordre Follo", 61, [("0217", 1838), ("3020", 2020), ("3207", 2024)]),
    municipality!("Sarpsborg", 58, [("0105", 1838), ("3003", 2020), ("3105", 2024)]),
    municipality!("Tønsberg", 57, [("0704", 1838), ("3803", 2020), ("3905", 2024)]),
    municipality!("Ålesund", 55, [("1504", 1838), ("1507", 2020), ("1508", 2024)]),
    municipality!("Skien", 55, [("0806", 1838), ("3807", 2020), ("4003", 2024)]),
    municipality!("Bodø", 53, [("1804", 1838)]),
    municipality!("Moss", 50, [("0104", 1838), ("3002", 2020), ("3103", 2024)]),
    municipality!("Larvik", 48, [("0709", 1838), ("3805", 2020), ("3909", 2024)]),
    municipality!("Arendal", 45, [("0906", 1838), ("4203", 2020)]),
    municipality!("Haugesund", 38, [("1106", 1838)]),
    municipality!("Porsgrunn", 37, [("0805", 1838), ("3806", 2020), ("4001", 2024)]),
    municipality!("Hamar", 32, [("0403", 1838), ("3403", 2020)]),
    municipality!("Lillehammer", 29, [("0501", 1838), ("3405", 2020)]),
    municipality!("Molde", 32, [("1502", 1838), ("1506", 2020)]),
    municipality!("Harstad", 25, [("1903", 1838), ("5402", 2020), ("5503", 2024)]),
    municipality!("Gjøvik", 31, [("0502", 1838), ("3407", 2020)]),
    municipality!("Steinkjer", 24, [("1702", 1838), ("5004", 2018), ("5006", 2020)]),
    municipality!("Alta", 21, [("2012", 1838), ("5403", 2020), ("5603", 2024)]),
    municipality!("Narvik", 22, [("1805", 1838), ("1806", 2020)]),
    municipality!("Kongsberg", 28, [("0604", 1838), ("3006", 2020), ("3303", 2024)]),
    municipality!("Elverum", 21, [("0427", 1838), ("3420", 2020)]),
    municipality!("Førde", 13, [("1432", 1838), ("4647", 2020)]),
    municipality!("Voss", 16, [("1235", 1838), ("4621", 2020)]),
    municipality!("Kautokeino", 3, [("2011", 1838), ("5430", 2020), ("5610", 2024)]),
    municipality!("Røros", 6, [("1640", 1838), ("5025", 2018)]),
    municipality!("Lom", 2, [("0514", 1838), ("3434", 2020)]),
    municipality!("Utsira", 1, [("1151", 1838)]),
];

/// Every municipality code with its validity period, as a code list.
pub fn municipality_codes() -> Vec<Code> {
    let mut out = Vec::new();
    for m in MUNICIPALITIES {
        for (i, &(code, from)) in m.codes.iter().enumerate() {
            let until =
                m.codes.get(i + 1).map(|&(_, next)| Date::from_ymd(next - 1, 12, 31).unwrap());
            out.push(Code {
                code: code.to_owned(),
                label: Localized::new(m.name, m.name),
                valid_from: Some(Date::from_ymd(from.max(1838), 1, 1).unwrap()),
                valid_until: until,
            });
        }
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    out
}

/// County codes, derived from the municipality list so the two cannot disagree.
pub fn county_codes() -> Vec<Code> {
    let names: &[(&str, &str)] = &[
        ("01", "Østfold"),
        ("02", "Akershus"),
        ("03", "Oslo"),
        ("04", "Hedmark"),
        ("05", "Oppland"),
        ("06", "Buskerud"),
        ("07", "Vestfold"),
        ("08", "Telemark"),
        ("09", "Aust-Agder"),
        ("10", "Vest-Agder"),
        ("11", "Rogaland"),
        ("12", "Hordaland"),
        ("14", "Sogn og Fjordane"),
        ("15", "Møre og Romsdal"),
        ("16", "Sør-Trøndelag"),
        ("17", "Nord-Trøndelag"),
        ("18", "Nordland"),
        ("19", "Troms"),
        ("20", "Finnmark"),
        ("30", "Viken"),
        ("31", "Østfold"),
        ("32", "Akershus"),
        ("33", "Buskerud"),
        ("34", "Innlandet"),
        ("38", "Vestfold og Telemark"),
        ("39", "Vestfold"),
        ("40", "Telemark"),
        ("42", "Agder"),
        ("46", "Vestland"),
        ("50", "Trøndelag"),
        ("54", "Troms og Finnmark"),
        ("55", "Troms"),
        ("56", "Finnmark"),
    ];
    names.iter().map(|&(c, n)| plain(c, n, n)).collect()
}

/// A code valid at all times.
pub fn plain(code: &str, nb: &str, en: &str) -> Code {
    Code {
        code: code.to_owned(),
        label: Localized::new(nb, en),
        valid_from: None,
        valid_until: None,
    }
}

pub fn codes(list: &[(&str, &str, &str)]) -> Vec<Code> {
    list.iter().map(|&(c, nb, en)| plain(c, nb, en)).collect()
}

pub const SEX: &[(&str, &str, &str)] = &[("1", "Mann", "Male"), ("2", "Kvinne", "Female")];

pub const STATUS_CODE: &[(&str, &str, &str)] = &[
    ("1", "Bosatt", "Resident"),
    ("2", "Utflyttet", "Emigrated"),
    ("3", "Død", "Dead"),
    ("4", "Forsvunnet", "Missing"),
];

pub const MARITAL_STATUS: &[(&str, &str, &str)] = &[
    ("1", "Ugift", "Never married"),
    ("2", "Gift", "Married"),
    ("3", "Enke/enkemann", "Widowed"),
    ("4", "Skilt", "Divorced"),
    ("5", "Separert", "Separated"),
];

pub const FAMILY_TYPE: &[(&str, &str, &str)] = &[
    ("1.1", "Enslig person", "Person living alone or without family"),
    ("2.1", "Ektepar uten barn 0-17 år", "Married couple without children aged 0-17"),
    ("2.2", "Ektepar med barn 0-17 år", "Married couple with children aged 0-17"),
    ("3.1", "Samboerpar uten barn 0-17 år", "Cohabiting couple without children aged 0-17"),
    ("3.2", "Samboerpar med barn 0-17 år", "Cohabiting couple with children aged 0-17"),
    ("4.1", "Mor med barn 0-17 år", "Mother with children aged 0-17"),
    ("4.2", "Far med barn 0-17 år", "Father with children aged 0-17"),
];

pub const HOUSEHOLD_TYPE: &[(&str, &str, &str)] = &[
    ("1", "Aleneboende", "One person"),
    ("2", "Par uten hjemmeboende barn", "Couple without children at home"),
    ("3", "Par med små barn (yngste 0-5 år)", "Couple with small children (youngest 0-5)"),
    ("4", "Par med store barn (yngste 6-17 år)", "Couple with older children (youngest 6-17)"),
    ("5", "Enforeldrehusholdning", "Single-parent household"),
    ("6", "Husholdning med voksne barn", "Household with adult children at home"),
];

pub const EMPLOYMENT_TYPE: &[(&str, &str, &str)] = &[
    ("1", "Ordinært arbeidsforhold", "Ordinary employment"),
    ("2", "Maritimt arbeidsforhold", "Maritime employment"),
    ("3", "Frilanser/oppdragstaker", "Freelancer or contractor"),
];

pub const CONTRACT: &[(&str, &str, &str)] =
    &[("F", "Fast ansettelse", "Permanent"), ("M", "Midlertidig ansettelse", "Temporary")];

pub const JOBSEEKER_STATUS: &[(&str, &str, &str)] = &[
    ("11", "Helt ledig", "Fully unemployed"),
    ("12", "Delvis ledig", "Partly unemployed"),
    ("13", "Arbeidsmarkedstiltak", "In a labour-market programme"),
];

pub const COMPLETION: &[(&str, &str, &str)] = &[
    ("1", "Fullført", "Completed"),
    ("2", "Avbrutt", "Discontinued"),
    ("3", "Pågår", "In progress"),
];

pub const IMMIGRATION_CATEGORY: &[(&str, &str, &str)] = &[
    (
        "A",
        "Født i Norge med to norskfødte foreldre",
        "Born in Norway to two Norwegian-born parents",
    ),
    ("B", "Innvandrere", "Immigrants"),
    ("C", "Norskfødte med innvandrerforeldre", "Born in Norway to immigrant parents"),
    ("E", "Utenlandsfødte med én norskfødt forelder", "Born abroad with one Norwegian-born parent"),
    (
        "F",
        "Norskfødte med én utenlandsfødt forelder",
        "Born in Norway with one foreign-born parent",
    ),
];

/// Countries of birth: (code, nb, en, weight among immigrants).
pub const COUNTRIES: &[(&str, &str, &str, f64)] = &[
    ("138", "Polen", "Poland", 18.0),
    ("452", "Litauen", "Lithuania", 8.0),
    ("106", "Sverige", "Sweden", 7.0),
    ("564", "Syria", "Syria", 7.0),
    ("444", "Somalia", "Somalia", 5.0),
    ("144", "Tyskland", "Germany", 5.0),
    ("241", "Eritrea", "Eritrea", 5.0),
    ("148", "Ukraina", "Ukraine", 6.0),
    ("534", "Irak", "Iraq", 4.0),
    ("536", "Pakistan", "Pakistan", 4.0),
    ("544", "Filippinene", "Philippines", 4.0),
    ("428", "Thailand", "Thailand", 3.0),
    ("101", "Danmark", "Denmark", 3.0),
    ("131", "Romania", "Romania", 3.0),
    ("143", "Tyrkia", "Turkey", 2.0),
    ("546", "Vietnam", "Vietnam", 3.0),
    ("139", "Storbritannia", "United Kingdom", 2.0),
];

/// NUS 2000 codes of completed education: (code, nb, en, level). The first digit is the level:
/// 1–2 compulsory, 3–4 upper secondary, 5 post-secondary vocational, 6 bachelor, 7 master, 8 PhD.
pub const NUS: &[(&str, &str, &str, u8)] = &[
    ("000000", "Ingen utdanning og førskoleutdanning", "No education or pre-school", 0),
    ("101101", "Barneskole, 1.-7. trinn", "Primary school, years 1-7", 1),
    ("201101", "Ungdomsskole, 8.-10. trinn", "Lower secondary school, years 8-10", 2),
    ("301101", "Studiespesialisering, Vg1", "General studies, year 1", 3),
    (
        "357101",
        "Teknikk og industriell produksjon, Vg1",
        "Technical and industrial production, year 1",
        3,
    ),
    ("401101", "Studiespesialisering, fullført", "General studies, completed", 4),
    ("457101", "Elektrofag, fagbrev", "Electrical trades, craft certificate", 4),
    (
        "455101",
        "Bygg- og anleggsteknikk, fagbrev",
        "Building and construction, craft certificate",
        4,
    ),
    ("476101", "Helsearbeiderfag, fagbrev", "Health work, craft certificate", 4),
    ("541101", "Fagskole, økonomi og administrasjon", "Vocational college, business", 5),
    ("557101", "Fagskole, tekniske fag", "Vocational college, technical", 5),
    ("641101", "Bachelor, økonomi og administrasjon", "Bachelor, business and administration", 6),
    ("662101", "Sykepleierutdanning", "Nursing", 6),
    ("612101", "Lærerutdanning, grunnskole", "Teacher training, compulsory school", 6),
    ("654101", "Bachelor, ingeniørfag", "Bachelor, engineering", 6),
    ("631101", "Bachelor, samfunnsfag", "Bachelor, social sciences", 6),
    ("741101", "Master, økonomi og administrasjon", "Master, business and administration", 7),
    ("734101", "Master i rettsvitenskap", "Master of Laws", 7),
    ("763101", "Profesjonsstudium i medisin", "Medicine, professional degree", 7),
    ("754101", "Sivilingeniør, master", "Master, engineering", 7),
    ("731101", "Master, samfunnsfag", "Master, social sciences", 7),
    ("812101", "Ph.d., humanistiske fag", "PhD, humanities", 8),
    ("854101", "Ph.d., teknologi", "PhD, technology", 8),
    ("863101", "Ph.d., medisin", "PhD, medicine", 8),
];

pub const NUS_MISSING: &[(&str, &str, &str)] = &[("999999", "Uoppgitt", "Unknown")];

/// NACE (SN2007) industries: (code, nb, en, weight among companies, relative wage level).
pub const NACE: &[(&str, &str, &str, f64, f64)] = &[
    ("01.110", "Dyrking av korn", "Growing of cereals", 3.0, 0.80),
    ("03.211", "Matfiskproduksjon i hav", "Marine fish farming", 1.0, 1.05),
    ("06.100", "Utvinning av råolje", "Extraction of crude petroleum", 0.3, 1.70),
    ("10.200", "Bearbeiding av fisk", "Processing of fish", 1.0, 0.90),
    ("25.110", "Produksjon av metallkonstruksjoner", "Manufacture of metal structures", 2.0, 1.00),
    ("41.200", "Oppføring av bygninger", "Construction of buildings", 9.0, 1.00),
    ("43.210", "Elektrisk installasjonsarbeid", "Electrical installation", 4.0, 1.05),
    (
        "47.111",
        "Butikkhandel med bredt vareutvalg",
        "Retail sale in non-specialised stores",
        8.0,
        0.75,
    ),
    ("49.410", "Godstransport på vei", "Freight transport by road", 4.0, 0.95),
    ("55.101", "Drift av hoteller", "Hotels", 2.0, 0.70),
    ("56.101", "Drift av restauranter", "Restaurants", 6.0, 0.65),
    ("62.010", "Programmeringstjenester", "Computer programming", 7.0, 1.35),
    ("64.190", "Bankvirksomhet", "Banking", 0.8, 1.45),
    ("69.201", "Regnskap og bokføring", "Accounting and bookkeeping", 5.0, 1.00),
    ("71.129", "Teknisk konsulentvirksomhet", "Engineering consultancy", 5.0, 1.25),
    ("84.110", "Generell offentlig administrasjon", "General public administration", 2.0, 1.05),
    ("85.201", "Grunnskoleundervisning", "Primary education", 3.0, 1.00),
    ("86.101", "Alminnelige somatiske sykehus", "General hospitals", 1.0, 1.10),
    ("87.101", "Sykehjem", "Nursing homes", 2.0, 0.90),
    ("96.020", "Frisering og annen skjønnhetspleie", "Hairdressing and beauty", 4.0, 0.65),
];

pub const ORGANISATION_FORM: &[(&str, &str, &str)] = &[
    ("AS", "Aksjeselskap", "Private limited company"),
    ("ASA", "Allmennaksjeselskap", "Public limited company"),
    ("ENK", "Enkeltpersonforetak", "Sole proprietorship"),
    ("ANS", "Ansvarlig selskap", "General partnership"),
    ("STAT", "Staten", "Central government"),
    ("KOMM", "Kommune", "Municipality"),
];

pub const SECTOR: &[(&str, &str, &str)] = &[
    ("6100", "Statsforvaltningen", "Central government"),
    ("6500", "Kommuneforvaltningen", "Local government"),
    ("2100", "Private aksjeselskaper mv.", "Private limited companies"),
    ("8200", "Personlig næringsdrivende", "Sole proprietors"),
];

/// STYRK-08 occupations: (code, nb, en, minimum education level).
pub const OCCUPATIONS: &[(&str, &str, &str, u8)] = &[
    ("1120", "Administrerende direktører", "Managing directors", 6),
    ("2211", "Allmennleger", "General practitioners", 7),
    ("2223", "Sykepleiere", "Nurses", 6),
    ("2320", "Lektorer", "Secondary school teachers", 7),
    ("2341", "Grunnskolelærere", "Primary school teachers", 6),
    ("2411", "Revisorer og regnskapsførere", "Accountants", 6),
    ("2512", "Programvareutviklere", "Software developers", 6),
    ("2142", "Sivilingeniører, bygg og anlegg", "Civil engineers", 7),
    ("3313", "Regnskapsmedarbeidere", "Accounting associates", 4),
    ("4110", "Kontormedarbeidere", "General office clerks", 3),
    ("5223", "Butikkmedarbeidere", "Shop sales assistants", 0),
    ("5321", "Helsefagarbeidere", "Health care assistants", 4),
    ("5120", "Kokker", "Cooks", 3),
    ("7112", "Murere", "Bricklayers", 4),
    ("7411", "Elektrikere", "Electricians", 4),
    ("8332", "Lastebil- og trailersjåfører", "Truck drivers", 2),
    ("9112", "Rengjøringspersonale", "Cleaners", 0),
];
