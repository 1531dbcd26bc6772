//! The variables of the synthetic `demo` datastore: names as in Statistics Norway's register
//! catalog, labels and descriptions in Norwegian and English, and their value domains.

use shared::VariableName;
use shared::metadata::{
    Code, DataType, Localized, Temporality, UnitType, ValueDomain, VariableMetadata,
};

use super::codes;

/// How a variable's values are described.
pub enum Domain {
    Codes(fn() -> Vec<Code>),
    /// A measured quantity, with its unit in Norwegian and English.
    Measure(&'static str, &'static str),
}

pub struct VarDef {
    pub name: &'static str,
    pub unit: UnitType,
    pub temporality: Temporality,
    pub data_type: DataType,
    pub subject: &'static str,
    pub label: (&'static str, &'static str),
    pub description: (&'static str, &'static str),
    pub domain: Domain,
    pub points_to: Option<UnitType>,
}

macro_rules! points_to {
    () => {
        None
    };
    ($pt:ident) => {
        Some(UnitType::$pt)
    };
}

macro_rules! variables {
    ($( $var:ident = $name:literal $unit:ident $temp:ident $dt:ident $subject:literal
        [$lnb:literal, $len:literal] [$dnb:literal, $den:literal] $domain:expr $(, points_to $pt:ident)? ;)*) => {
        /// Index of each variable in [`VARIABLES`], used by the generator to pick a writer.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Var { $($var),* }

        pub static VARIABLES: &[VarDef] = &[$(VarDef {
            name: $name,
            unit: UnitType::$unit,
            temporality: Temporality::$temp,
            data_type: DataType::$dt,
            subject: $subject,
            label: ($lnb, $len),
            description: ($dnb, $den),
            domain: $domain,
            points_to: points_to!($($pt)?),
        }),*];
    };
}

fn sex() -> Vec<Code> {
    codes::codes(codes::SEX)
}
fn status_code() -> Vec<Code> {
    codes::codes(codes::STATUS_CODE)
}
fn marital() -> Vec<Code> {
    codes::codes(codes::MARITAL_STATUS)
}
fn family_type() -> Vec<Code> {
    codes::codes(codes::FAMILY_TYPE)
}
fn household_type() -> Vec<Code> {
    codes::codes(codes::HOUSEHOLD_TYPE)
}
fn employment_type() -> Vec<Code> {
    codes::codes(codes::EMPLOYMENT_TYPE)
}
fn contract() -> Vec<Code> {
    codes::codes(codes::CONTRACT)
}
fn jobseeker() -> Vec<Code> {
    codes::codes(codes::JOBSEEKER_STATUS)
}
fn completion() -> Vec<Code> {
    codes::codes(codes::COMPLETION)
}
fn immigration() -> Vec<Code> {
    codes::codes(codes::IMMIGRATION_CATEGORY)
}
fn orgform() -> Vec<Code> {
    codes::codes(codes::ORGANISATION_FORM)
}
fn sector() -> Vec<Code> {
    codes::codes(codes::SECTOR)
}
fn municipality() -> Vec<Code> {
    codes::municipality_codes()
}
fn county() -> Vec<Code> {
    codes::county_codes()
}
fn centrality() -> Vec<Code> {
    codes::codes(&[
        ("1", "Mest sentrale kommuner", "Most central"),
        ("2", "Nest mest sentrale", "Second most central"),
        ("3", "Sentralitet 3", "Centrality 3"),
        ("4", "Sentralitet 4", "Centrality 4"),
        ("5", "Sentralitet 5", "Centrality 5"),
        ("6", "Minst sentrale kommuner", "Least central"),
    ])
}
fn country() -> Vec<Code> {
    let mut out = codes::codes(&[("000", "Norge", "Norway")]);
    out.extend(codes::COUNTRIES.iter().map(|&(c, nb, en, _)| codes::plain(c, nb, en)));
    out
}
fn nus() -> Vec<Code> {
    codes::NUS.iter().map(|&(c, nb, en, _)| codes::plain(c, nb, en)).collect()
}
fn nace() -> Vec<Code> {
    codes::NACE.iter().map(|&(c, nb, en, _, _)| codes::plain(c, nb, en)).collect()
}
fn occupation() -> Vec<Code> {
    codes::OCCUPATIONS.iter().map(|&(c, nb, en, _)| codes::plain(c, nb, en)).collect()
}

const NOK: Domain = Domain::Measure("kroner", "NOK");

variables! {
    // Persons: fixed facts.
    Kjoenn = "BEFOLKNING_KJOENN" Person Fixed String "Befolkning"
        ["Kjønn", "Sex"]
        ["Personens kjønn slik det er registrert i Folkeregisteret.", "The person's sex as recorded in the National Population Register."]
        Domain::Codes(sex);
    FoedselsAarMnd = "BEFOLKNING_FOEDSELS_AAR_MND" Person Fixed Long "Befolkning"
        ["Fødselsår og -måned", "Year and month of birth"]
        ["Fødselsår og fødselsmåned på formen ÅÅÅÅMM.", "Year and month of birth in the form YYYYMM."]
        Domain::Measure("ÅÅÅÅMM", "YYYYMM");
    DoedsDato = "BEFOLKNING_DOEDS_DATO" Person Fixed Date "Befolkning"
        ["Dødsdato", "Date of death"]
        ["Dato for personens død. Bare personer som er døde har en verdi.", "Date of the person's death. Only deceased persons have a value."]
        Domain::Measure("dato", "date");
    MorFnr = "BEFOLKNING_MOR_FNR" Person Fixed Long "Befolkning"
        ["Mors løpenummer", "Mother's pseudonymous id"]
        ["Pseudonymisert identifikator for personens mor. Kan bare brukes som nøkkel for kobling.", "Pseudonymous identifier of the person's mother. Usable only as a key for linking."]
        Domain::Measure("identifikator", "identifier"), points_to Person;
    FarFnr = "BEFOLKNING_FAR_FNR" Person Fixed Long "Befolkning"
        ["Fars løpenummer", "Father's pseudonymous id"]
        ["Pseudonymisert identifikator for personens far. Kan bare brukes som nøkkel for kobling.", "Pseudonymous identifier of the person's father. Usable only as a key for linking."]
        Domain::Measure("identifikator", "identifier"), points_to Person;
    Fodeland = "BEFOLKNING_FODELAND" Person Fixed String "Innvandring"
        ["Fødeland", "Country of birth"]
        ["Landet personen er født i, etter Statistisk sentralbyrås landkoder.", "The country the person was born in, by Statistics Norway's country codes."]
        Domain::Codes(country);
    Invkat = "BEFOLKNING_INVKAT" Person Fixed String "Innvandring"
        ["Innvandringskategori", "Immigration category"]
        ["Inndeling av befolkningen etter eget og foreldrenes fødeland.", "Classification of the population by their own and their parents' country of birth."]
        Domain::Codes(immigration);
    Foedekommune = "BEFOLKNING_FOEDEKOMMUNE" Person Fixed String "Befolkning"
        ["Fødekommune", "Municipality of birth"]
        ["Kommunen personen ble født i, for personer født i Norge.", "The municipality the person was born in, for persons born in Norway."]
        Domain::Codes(municipality);
    Innvandringsdato = "BEFOLKNING_INNVANDRINGSDATO" Person Fixed Date "Innvandring"
        ["Dato for første innvandring", "Date of first immigration"]
        ["Dato da personen første gang ble registrert bosatt i Norge etter innvandring.", "Date the person was first registered as resident in Norway after immigrating."]
        Domain::Measure("dato", "date");
    AarForsteFullfHov = "NUDB_AAR_FORSTE_FULLF_HOV" Person Fixed Long "Utdanning"
        ["År for første fullførte høyere utdanning", "Year of first completed higher education"]
        ["Året personen første gang fullførte en utdanning på høyere nivå (fagskole, bachelor eller mer).", "The year the person first completed an education at tertiary level (vocational college, bachelor or above)."]
        Domain::Measure("år", "year");
    Grunnskolepoeng = "NUDB_GRUNNSKOLEPOENG" Person Fixed Double "Utdanning"
        ["Grunnskolepoeng", "Lower-secondary grade points"]
        ["Summen av karakterene fra grunnskolen, for elever som gikk ut av 10. trinn fra 2002.", "Sum of the grades from lower secondary school, for pupils leaving year 10 from 2002."]
        Domain::Measure("poeng", "points");
    // Persons: status on given days.
    Statuskode = "BEFOLKNING_STATUSKODE" Person Status String "Befolkning"
        ["Status i Folkeregisteret", "Status in the population register"]
        ["Personens status i Folkeregisteret per 1. januar: bosatt, utflyttet eller død.", "The person's status in the population register on 1 January: resident, emigrated or dead."]
        Domain::Codes(status_code);
    Bosted = "BOSATTEFDT_BOSTED" Person Status String "Befolkning"
        ["Bostedskommune", "Municipality of residence"]
        ["Kommunen personen var registrert bosatt i per 1. januar, med kommunenummeret som gjaldt da.", "The municipality the person was registered as living in on 1 January, with the municipality code in force then."]
        Domain::Codes(municipality);
    Fylke = "BOSATTEFDT_FYLKE" Person Status String "Befolkning"
        ["Bostedsfylke", "County of residence"]
        ["Fylket personen var registrert bosatt i per 1. januar.", "The county the person was registered as living in on 1 January."]
        Domain::Codes(county);
    Sivstand = "SIVSTANDFDT_SIVSTAND" Person Status String "Befolkning"
        ["Sivilstand", "Marital status"]
        ["Personens sivilstand per 1. januar.", "The person's marital status on 1 January."]
        Domain::Codes(marital);
    Famnr = "BEFOLKNING_REGSTAT_FAMNR" Person Status Long "Husholdning og familie"
        ["Familienummer", "Family number"]
        ["Identifikator for familien personen tilhørte per 1. januar. Brukes som nøkkel mot familievariabler.", "Identifier of the family the person belonged to on 1 January. Used as a key to family variables."]
        Domain::Measure("identifikator", "identifier"), points_to Family;
    Famtyp = "BEFOLKNING_REGSTAT_FAMTYP" Person Status String "Husholdning og familie"
        ["Familietype", "Family type"]
        ["Typen familie personen tilhørte per 1. januar.", "The type of family the person belonged to on 1 January."]
        Domain::Codes(family_type);
    Hushnr = "BEFOLKNING_REGSTAT_HUSHNR" Person Status Long "Husholdning og familie"
        ["Husholdningsnummer", "Household number"]
        ["Identifikator for husholdningen personen tilhørte per 1. januar (fra 2005).", "Identifier of the household the person belonged to on 1 January (from 2005)."]
        Domain::Measure("identifikator", "identifier"), points_to Household;
    Bu = "NUDB_BU" Person Status String "Utdanning"
        ["Høyeste fullførte utdanning", "Highest completed education"]
        ["Personens høyeste fullførte utdanning per 1. oktober, etter Norsk standard for utdanningsgruppering (NUS2000).", "The person's highest completed education on 1 October, by the Norwegian standard classification of education (NUS2000)."]
        Domain::Codes(nus);
    // Persons: income and wealth over calendar years.
    Wlonn = "INNTEKT_WLONN" Person Accumulated Long "Inntekt og formue"
        ["Lønnsinntekt", "Wage income"]
        ["Sum lønnsinntekter i kalenderåret: kontantlønn, naturalytelser og sykepenger fra arbeidsgiver.", "Total wage income in the calendar year: cash wages, benefits in kind and sick pay from the employer."]
        NOK;
    Wyrkinnt = "INNTEKT_WYRKINNT" Person Accumulated Long "Inntekt og formue"
        ["Yrkesinntekt", "Earned income"]
        ["Summen av lønnsinntekt og netto næringsinntekt i kalenderåret.", "Wage income plus net income from self-employment in the calendar year."]
        NOK;
    Wnarinnt = "INNTEKT_WNARINNT" Person Accumulated Long "Inntekt og formue"
        ["Netto næringsinntekt", "Net income from self-employment"]
        ["Netto inntekt fra eget næringsvirksomhet i kalenderåret.", "Net income from the person's own business in the calendar year."]
        NOK;
    Wkapinnt = "INNTEKT_WKAPINNT" Person Accumulated Long "Inntekt og formue"
        ["Kapitalinntekt", "Capital income"]
        ["Renteinntekter, aksjeutbytte og andre kapitalinntekter i kalenderåret.", "Interest, dividends and other capital income in the calendar year."]
        NOK;
    Wpensj = "INNTEKT_WPENSJ" Person Accumulated Long "Inntekt og formue"
        ["Pensjoner", "Pensions"]
        ["Alderspensjon fra folketrygden og tjenestepensjoner i kalenderåret.", "Old-age pension from National Insurance and occupational pensions in the calendar year."]
        NOK;
    Woverf = "INNTEKT_WOVERF" Person Accumulated Long "Inntekt og formue"
        ["Skattepliktige og skattefrie overføringer", "Transfers"]
        ["Dagpenger, arbeidsavklaringspenger, barnetrygd og andre overføringer i kalenderåret, unntatt pensjoner.", "Unemployment benefit, work assessment allowance, child benefit and other transfers in the calendar year, pensions excepted."]
        NOK;
    Wsaminnt = "INNTEKT_WSAMINNT" Person Accumulated Long "Inntekt og formue"
        ["Samlet inntekt", "Total income"]
        ["Summen av yrkesinntekt, kapitalinntekt, pensjoner og overføringer i kalenderåret.", "Earned income, capital income, pensions and transfers in the calendar year."]
        NOK;
    Wskatt = "INNTEKT_WSKATT" Person Accumulated Long "Inntekt og formue"
        ["Utlignet skatt", "Assessed tax"]
        ["Utlignet skatt på inntekt og formue for kalenderåret.", "Assessed tax on income and wealth for the calendar year."]
        NOK;
    Bruttoformue = "INNTEKT_BRUTTOFORMUE" Person Accumulated Long "Inntekt og formue"
        ["Bruttoformue", "Gross wealth"]
        ["Samlet bruttoformue per 31. desember i inntektsåret.", "Total gross wealth on 31 December of the income year."]
        NOK;
    Gjeld = "INNTEKT_GJELD" Person Accumulated Long "Inntekt og formue"
        ["Gjeld", "Debt"]
        ["Samlet gjeld per 31. desember i inntektsåret.", "Total debt on 31 December of the income year."]
        NOK;
    // Persons: spells.
    Arbsokerstatus = "ARBSOEK_ARBSOKERSTATUS" Person Event String "Arbeid og lønn"
        ["Arbeidssøkerstatus", "Job-seeker status"]
        ["Perioder personen var registrert som arbeidssøker hos NAV, med status.", "Periods the person was registered as a job seeker with the labour and welfare service, with status."]
        Domain::Codes(jobseeker);
    Aap = "ARBAVKL_AAP" Person Event Long "Trygd og stønader"
        ["Arbeidsavklaringspenger, dagsats", "Work assessment allowance, daily rate"]
        ["Perioder med arbeidsavklaringspenger (fra mars 2010), med dagsats i kroner.", "Periods with work assessment allowance (from March 2010), with the daily rate in NOK."]
        Domain::Measure("kroner per dag", "NOK per day");
    Sykepenger = "SYKEFRAV_SYKEPENGER_GRAD" Person Event Double "Trygd og stønader"
        ["Sykepenger, sykmeldingsgrad", "Sickness benefit, degree of sick leave"]
        ["Perioder med sykepenger fra NAV etter arbeidsgiverperioden, med sykmeldingsgrad i prosent.", "Periods with sickness benefit from the welfare service after the employer period, with the degree of sick leave in per cent."]
        Domain::Measure("prosent", "per cent");
    // Jobs (a-ordningen, from 2015).
    ArbFnr = "ARBLONN_ARB_FNR" Job Fixed Long "Arbeid og lønn"
        ["Arbeidstakers løpenummer", "Employee's pseudonymous id"]
        ["Pseudonymisert identifikator for personen i arbeidsforholdet. Kan bare brukes som nøkkel.", "Pseudonymous identifier of the person holding the job. Usable only as a key."]
        Domain::Measure("identifikator", "identifier"), points_to Person;
    ArbForetak = "ARBLONN_ARB_FORETAK_ID" Job Fixed Long "Arbeid og lønn"
        ["Foretakets løpenummer", "Company's pseudonymous id"]
        ["Pseudonymisert identifikator for foretaket arbeidsforholdet er i. Kan bare brukes som nøkkel.", "Pseudonymous identifier of the employing company. Usable only as a key."]
        Domain::Measure("identifikator", "identifier"), points_to Company;
    ArbType = "ARBLONN_ARB_TYPE" Job Fixed String "Arbeid og lønn"
        ["Type arbeidsforhold", "Type of employment"]
        ["Arbeidsforholdets type etter a-ordningen.", "The type of the employment relationship as reported to a-ordningen."]
        Domain::Codes(employment_type);
    ArbStillingspst = "ARBLONN_ARB_STILLINGSPST" Job Event Double "Arbeid og lønn"
        ["Stillingsprosent", "Position percentage"]
        ["Avtalt stillingsprosent i arbeidsforholdet.", "Agreed position percentage of the job."]
        Domain::Measure("prosent", "per cent");
    ArbTimer = "ARBLONN_ARB_AVTALT_TIMER" Job Event Double "Arbeid og lønn"
        ["Avtalte timer per uke", "Agreed weekly hours"]
        ["Antall avtalte arbeidstimer per uke i arbeidsforholdet.", "Number of agreed working hours per week in the job."]
        Domain::Measure("timer", "hours");
    ArbYrke = "ARBLONN_ARB_YRKE" Job Event String "Arbeid og lønn"
        ["Yrke", "Occupation"]
        ["Yrket i arbeidsforholdet etter STYRK-08.", "The occupation of the job by the STYRK-08 classification."]
        Domain::Codes(occupation);
    ArbAnsettelsesform = "ARBLONN_ARB_ANSETTELSESFORM" Job Event String "Arbeid og lønn"
        ["Ansettelsesform", "Form of employment"]
        ["Om arbeidsforholdet er fast eller midlertidig.", "Whether the job is permanent or temporary."]
        Domain::Codes(contract);
    LonnBelop = "ARBLONN_LONN_BELOP" Job Accumulated Long "Arbeid og lønn"
        ["Utbetalt lønn i arbeidsforholdet", "Wages paid in the job"]
        ["Sum lønn utbetalt i arbeidsforholdet i kalenderåret.", "Total wages paid in the job in the calendar year."]
        NOK;
    ArbStartdato = "ARBLONN_ARB_STARTDATO" Job Fixed Date "Arbeid og lønn"
        ["Startdato for arbeidsforholdet", "Start date of the job"]
        ["Dato arbeidsforholdet startet.", "Date the job started."]
        Domain::Measure("dato", "date");
    ArbSluttdato = "ARBLONN_ARB_SLUTTDATO" Job Fixed Date "Arbeid og lønn"
        ["Sluttdato for arbeidsforholdet", "End date of the job"]
        ["Dato arbeidsforholdet ble avsluttet. Løpende arbeidsforhold har ingen verdi.", "Date the job ended. Ongoing jobs have no value."]
        Domain::Measure("dato", "date");
    // Companies.
    ForetakNace = "FORETAK_NACE1_SN07" Company Fixed String "Virksomheter"
        ["Næring (SN2007)", "Industry (NACE)"]
        ["Foretakets hovednæring etter Standard for næringsgruppering (SN2007).", "The company's main industry by the Standard Industrial Classification (SN2007, NACE Rev. 2)."]
        Domain::Codes(nace);
    ForetakKommnr = "FORETAK_KOMMNR" Company Fixed String "Virksomheter"
        ["Foretakets kommune", "Company's municipality"]
        ["Kommunen foretaket har forretningsadresse i.", "The municipality of the company's business address."]
        Domain::Codes(municipality);
    ForetakOrgform = "FORETAK_ORGFORM" Company Fixed String "Virksomheter"
        ["Organisasjonsform", "Form of organisation"]
        ["Foretakets organisasjonsform i Enhetsregisteret.", "The company's legal form in the Central Coordinating Register."]
        Domain::Codes(orgform);
    ForetakSektor = "FORETAK_SEKTOR" Company Fixed String "Virksomheter"
        ["Institusjonell sektor", "Institutional sector"]
        ["Foretakets institusjonelle sektor.", "The company's institutional sector."]
        Domain::Codes(sector);
    ForetakStiftet = "FORETAK_STIFTELSESDATO" Company Fixed Date "Virksomheter"
        ["Stiftelsesdato", "Date of foundation"]
        ["Datoen foretaket ble stiftet.", "The date the company was founded."]
        Domain::Measure("dato", "date");
    ForetakAnsatte = "FORETAK_ANSATTE" Company Status Long "Virksomheter"
        ["Antall ansatte", "Number of employees"]
        ["Antall registrerte ansatte per 1. januar (fra 2015).", "Number of registered employees on 1 January (from 2015)."]
        Domain::Measure("personer", "persons");
    ForetakOmsetning = "FORETAK_OMSETNING" Company Accumulated Long "Virksomheter"
        ["Omsetning", "Turnover"]
        ["Foretakets omsetning i kalenderåret, i tusen kroner (fra 2015).", "The company's turnover in the calendar year, in thousands of NOK (from 2015)."]
        Domain::Measure("1000 kroner", "NOK 1000");
    // Courses (education participations).
    KursFnr = "NUDB_KURS_FNR" Course Fixed Long "Utdanning"
        ["Elevens/studentens løpenummer", "Student's pseudonymous id"]
        ["Pseudonymisert identifikator for personen som tok kurset. Kan bare brukes som nøkkel.", "Pseudonymous identifier of the person taking the course. Usable only as a key."]
        Domain::Measure("identifikator", "identifier"), points_to Person;
    KursNus = "NUDB_KURS_NUS" Course Event String "Utdanning"
        ["Utdanning (NUS) for kurset", "Education (NUS) of the course"]
        ["Utdanningen kurset gir, etter NUS2000, for perioden kurset varte.", "The education the course leads to, by NUS2000, over the period of the course."]
        Domain::Codes(nus);
    KursFullfkode = "NUDB_KURS_FULLFKODE" Course Event String "Utdanning"
        ["Fullføringskode", "Completion code"]
        ["Om kurset er fullført, avbrutt eller pågår.", "Whether the course was completed, discontinued or is in progress."]
        Domain::Codes(completion);
    KursKommnr = "NUDB_KURS_KOMMNR" Course Fixed String "Utdanning"
        ["Lærestedets kommune", "Municipality of the institution"]
        ["Kommunen lærestedet ligger i.", "The municipality the educational institution is in."]
        Domain::Codes(municipality);
    KursStudiepoeng = "NUDB_KURS_STUDIEPOENG" Course Fixed Double "Utdanning"
        ["Studiepoeng", "Credits"]
        ["Studiepoeng avlagt i kurset (høyere utdanning).", "Credits earned in the course (higher education)."]
        Domain::Measure("studiepoeng", "ECTS credits");
    // Families and households.
    FamAntpers = "REGSTAT_FAMILIE_ANTPERS" Family Status Long "Husholdning og familie"
        ["Antall personer i familien", "Persons in the family"]
        ["Antall personer i familien per 1. januar.", "Number of persons in the family on 1 January."]
        Domain::Measure("personer", "persons");
    FamAntbarn = "REGSTAT_FAMILIE_ANTBARN_0_17" Family Status Long "Husholdning og familie"
        ["Antall barn 0-17 år i familien", "Children aged 0-17 in the family"]
        ["Antall hjemmeboende barn under 18 år i familien per 1. januar.", "Number of children under 18 living in the family on 1 January."]
        Domain::Measure("personer", "persons");
    FamType = "REGSTAT_FAMILIE_TYPE" Family Status String "Husholdning og familie"
        ["Familietype (familie)", "Family type (family)"]
        ["Familiens type per 1. januar.", "The family's type on 1 January."]
        Domain::Codes(family_type);
    FamInntekt = "INNTEKT_FAMILIE_SAMLET" Family Accumulated Long "Inntekt og formue"
        ["Familiens samlede inntekt", "Total family income"]
        ["Sum samlet inntekt i kalenderåret for personene i familien per 1. januar.", "Sum of total income in the calendar year of the family's members on 1 January."]
        NOK;
    HushAntpers = "REGSTAT_HUSHOLDNING_ANTPERS" Household Status Long "Husholdning og familie"
        ["Antall personer i husholdningen", "Persons in the household"]
        ["Antall personer i husholdningen per 1. januar (fra 2005). I de syntetiske dataene faller husholdning og familie sammen.", "Number of persons in the household on 1 January (from 2005). In the synthetic data households coincide with families."]
        Domain::Measure("personer", "persons");
    HushType = "REGSTAT_HUSHOLDNING_TYPE" Household Status String "Husholdning og familie"
        ["Husholdningstype", "Household type"]
        ["Husholdningens type per 1. januar (fra 2005).", "The household's type on 1 January (from 2005)."]
        Domain::Codes(household_type);
    HushInntekt = "INNTEKT_HUSHOLDNING_SAMLET" Household Accumulated Long "Inntekt og formue"
        ["Husholdningens samlede inntekt", "Total household income"]
        ["Sum samlet inntekt i kalenderåret for personene i husholdningen per 1. januar (fra 2005).", "Sum of total income in the calendar year of the household's members on 1 January (from 2005)."]
        NOK;
    // Municipalities.
    KommuneSentralitet = "KOMMUNE_SENTRALITET" Municipality Fixed String "Regionale forhold"
        ["Sentralitetsindeks, gruppert", "Centrality, grouped"]
        ["Kommunens sentralitet etter Statistisk sentralbyrås sentralitetsindeks, i seks grupper.", "The municipality's centrality by Statistics Norway's centrality index, in six groups."]
        Domain::Codes(centrality);
    KommuneAreal = "KOMMUNE_AREAL" Municipality Fixed Double "Regionale forhold"
        ["Areal", "Area"]
        ["Kommunens landareal i kvadratkilometer.", "The municipality's land area in square kilometres."]
        Domain::Measure("km²", "km²");
}

impl Var {
    pub fn def(self) -> &'static VarDef {
        &VARIABLES[self as usize]
    }
}

impl VarDef {
    pub fn metadata(&self) -> VariableMetadata {
        let population = match self.unit {
            UnitType::Person => Localized::new(
                "Alle personer registrert bosatt i Norge i perioden",
                "Everyone registered as resident in Norway during the period",
            ),
            UnitType::Job => Localized::new(
                "Arbeidsforhold rapportert til a-ordningen fra 2015",
                "Jobs reported to a-ordningen from 2015",
            ),
            UnitType::Company => Localized::new("Foretak med ansatte", "Companies with employees"),
            UnitType::Course => Localized::new(
                "Kurs i videregående og høyere utdanning",
                "Courses in upper-secondary and higher education",
            ),
            UnitType::Family => {
                Localized::new("Registerbaserte familier", "Register-based families")
            }
            UnitType::Household => {
                Localized::new("Registerbaserte husholdninger", "Register-based households")
            }
            _ => Localized::new("Norske kommuner", "Norwegian municipalities"),
        };
        let value_domain = match &self.domain {
            Domain::Codes(list) => {
                let missing = if self.name.starts_with("NUDB_BU") || self.name == "NUDB_KURS_NUS" {
                    codes::codes(codes::NUS_MISSING)
                } else {
                    Vec::new()
                };
                ValueDomain::CodeList { codes: list(), missing_codes: missing }
            }
            Domain::Measure(nb, en) => ValueDomain::Measure {
                unit: Localized::new(*nb, *en),
                description: Localized::new(self.description.0, self.description.1),
            },
        };
        VariableMetadata {
            name: VariableName::parse(self.name).expect("generator variable names are valid"),
            label: Localized::new(self.label.0, self.label.1),
            description: Localized::new(self.description.0, self.description.1),
            unit_type: self.unit,
            temporality: self.temporality,
            data_type: self.data_type,
            subject_fields: vec![self.subject.to_owned()],
            population,
            value_domain,
            points_to: self.points_to,
            coverage: None,
        }
    }
}
