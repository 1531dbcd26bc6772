//! The country gate: which countries may reach the service, decided from the client's address.
//!
//! The client address is the TCP peer, unless the peer is a trusted proxy: then it is the
//! rightmost address in `X-Forwarded-For` that is not itself a trusted proxy (anything left of
//! it was written by the client and proves nothing). The country comes from a MaxMind-format
//! database when one is configured, else from address ranges in the settings. Loopback and
//! private addresses never cross the Internet and are allowed by default; an address whose
//! country is unknown is refused, because a gate that opens on missing data is no gate.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// EU and EEA members, then the countries with an EU adequacy decision (Andorra, Argentina,
/// Canada, Faroe Islands, Guernsey, Israel, Isle of Man, Japan, Jersey, New Zealand, South
/// Korea, Switzerland, the United Kingdom, Uruguay, and the United States under the Data
/// Privacy Framework).
pub const DEFAULT_ALLOWED: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "AD", "AR",
    "CA", "FO", "GG", "IL", "IM", "JP", "JE", "NZ", "KR", "CH", "GB", "UY", "US",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryRange {
    /// An address range, such as `192.0.2.0/24`.
    pub range: String,
    /// ISO 3166-1 alpha-2 code, such as `NO`.
    pub country: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountrySettings {
    /// ISO 3166-1 alpha-2 codes that may reach the service.
    pub allowed: Vec<String>,
    /// A MaxMind-format country database (GeoLite2-Country.mmdb or GeoIP2-Country.mmdb).
    pub database: Option<PathBuf>,
    /// Address ranges and their countries, consulted when the database has no answer.
    pub ranges: Vec<CountryRange>,
    /// Proxies (addresses or ranges) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Loopback and private addresses are let in without a country.
    pub allow_private: bool,
    /// Switches the gate off altogether (development only).
    pub disabled: bool,
}

impl Default for CountrySettings {
    fn default() -> CountrySettings {
        CountrySettings {
            allowed: DEFAULT_ALLOWED.iter().map(|c| (*c).to_owned()).collect(),
            database: None,
            ranges: Vec::new(),
            trusted_proxies: Vec::new(),
            allow_private: true,
            disabled: false,
        }
    }
}

/// What the gate decided about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub address: IpAddr,
    pub country: Option<String>,
    pub allowed: bool,
}

pub struct CountryGate {
    settings: CountrySettings,
    database: Option<maxminddb::Reader<Vec<u8>>>,
    ranges: Vec<(IpNet, String)>,
    proxies: Vec<IpNet>,
}

impl std::fmt::Debug for CountryGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountryGate").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn parse_net(text: &str, setting: &str) -> anyhow::Result<IpNet> {
    text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
        anyhow::anyhow!("{setting}: '{text}' is not an address or range such as 192.0.2.0/24")
    })
}

fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => a.is_loopback() || a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => {
            a.is_loopback()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || a.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

impl CountryGate {
    pub fn new(settings: &CountrySettings) -> anyhow::Result<CountryGate> {
        let database = match &settings.database {
            Some(path) => Some(maxminddb::Reader::open_readfile(path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the country database {}: {e} (setting countries.database)",
                    path.display()
                )
            })?),
            None => None,
        };
        let ranges = settings
            .ranges
            .iter()
            .map(|r| Ok((parse_net(&r.range, "countries.ranges")?, r.country.to_uppercase())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let proxies = settings
            .trusted_proxies
            .iter()
            .map(|p| parse_net(p, "countries.trusted_proxies"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(CountryGate { settings: settings.clone(), database, ranges, proxies })
    }

    fn trusted(&self, address: IpAddr) -> bool {
        self.proxies.iter().any(|p| p.contains(&address))
    }

    /// The client's address, from the peer and the `X-Forwarded-For` header(s).
    pub fn client_address(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusted(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        hops.into_iter().rev().find(|a| !self.trusted(*a)).unwrap_or(peer)
    }

    pub fn country_of(&self, address: IpAddr) -> Option<String> {
        let address = match address {
            IpAddr::V6(a) => a.to_ipv4_mapped().map_or(address, IpAddr::V4),
            a => a,
        };
        if let Some(reader) = &self.database
            && let Ok(result) = reader.lookup(address)
            && let Ok(Some(record)) = result.decode::<maxminddb::geoip2::Country<'_>>()
            && let Some(code) = record.country.iso_code.or(record.registered_country.iso_code)
        {
            return Some(code.to_uppercase());
        }
        self.ranges
            .iter()
            .filter(|(net, _)| net.contains(&address))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|(_, country)| country.clone())
    }

    pub fn decide(&self, peer: IpAddr, forwarded_for: &[&str]) -> Verdict {
        let address = self.client_address(peer, forwarded_for);
        let country = self.country_of(address);
        let allowed = self.settings.disabled
            || match &country {
                Some(c) => self.settings.allowed.iter().any(|a| a.eq_ignore_ascii_case(c)),
                None => self.settings.allow_private && is_private(address),
            };
        Verdict { address, country, allowed }
    }
}

/// Writes a small MaxMind DB (IPv4, 24-bit records) that maps ranges to countries, in the
/// format of GeoLite2-Country. The tests build their own database with it; no real one is
/// downloaded.
pub mod mmdb_writer {
    use std::net::Ipv4Addr;

    #[derive(Clone, Copy)]
    enum Record {
        Empty,
        Node(usize),
        Data(usize),
    }

    fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
        assert!(size < 29, "small values only");
        if kind <= 7 {
            out.push((kind << 5) | size as u8);
        } else {
            out.push(size as u8);
            out.push(kind - 7);
        }
    }

    fn string(text: &str, out: &mut Vec<u8>) {
        control(2, text.len(), out);
        out.extend_from_slice(text.as_bytes());
    }

    fn unsigned(kind: u8, value: u64, out: &mut Vec<u8>) {
        let bytes = value.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        control(kind, 8 - skip, out);
        out.extend_from_slice(&bytes[skip..]);
    }

    /// The database bytes for `(network, prefix length, country code)` entries that do not
    /// overlap.
    pub fn build(entries: &[(Ipv4Addr, u8, &str)]) -> Vec<u8> {
        let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for (network, prefix, country) in entries {
            let offset = data.len();
            control(7, 1, &mut data);
            string("country", &mut data);
            control(7, 1, &mut data);
            string("iso_code", &mut data);
            string(country, &mut data);
            offsets.push(offset);
            let bits = u32::from(*network);
            let mut node = 0;
            for depth in 0..*prefix {
                let bit = ((bits >> (31 - depth)) & 1) as usize;
                if depth + 1 == *prefix {
                    nodes[node][bit] = Record::Data(offset);
                } else {
                    node = match nodes[node][bit] {
                        Record::Node(next) => next,
                        _ => {
                            nodes.push([Record::Empty; 2]);
                            let next = nodes.len() - 1;
                            nodes[node][bit] = Record::Node(next);
                            next
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for record in node {
                let value = match *record {
                    Record::Empty => count,
                    Record::Node(n) => n,
                    Record::Data(offset) => count + 16 + offset,
                };
                out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        control(7, 9, &mut out);
        string("binary_format_major_version", &mut out);
        unsigned(5, 2, &mut out);
        string("binary_format_minor_version", &mut out);
        unsigned(5, 0, &mut out);
        string("build_epoch", &mut out);
        unsigned(9, 1_700_000_000, &mut out);
        string("database_type", &mut out);
        string("Skjold-Test-Country", &mut out);
        string("description", &mut out);
        control(7, 1, &mut out);
        string("en", &mut out);
        string("test database", &mut out);
        string("ip_version", &mut out);
        unsigned(5, 4, &mut out);
        string("languages", &mut out);
        control(11, 1, &mut out);
        string("en", &mut out);
        string("node_count", &mut out);
        unsigned(6, count as u64, &mut out);
        string("record_size", &mut out);
        unsigned(5, 24, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(settings: CountrySettings) -> CountryGate {
        CountryGate::new(&settings).unwrap()
    }

    #[test]
    fn a_database_of_our_own_making_resolves_countries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countries.mmdb");
        std::fs::write(
            &path,
            mmdb_writer::build(&[
                ("192.0.2.0".parse().unwrap(), 24, "NO"),
                ("198.51.100.0".parse().unwrap(), 24, "RU"),
                ("203.0.113.128".parse().unwrap(), 25, "SE"),
            ]),
        )
        .unwrap();
        let g = gate(CountrySettings { database: Some(path), ..CountrySettings::default() });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(g.country_of(ip("192.0.2.77")).as_deref(), Some("NO"));
        assert_eq!(g.country_of(ip("198.51.100.1")).as_deref(), Some("RU"));
        assert_eq!(g.country_of(ip("203.0.113.200")).as_deref(), Some("SE"));
        assert_eq!(g.country_of(ip("203.0.113.5")), None);
        assert!(g.decide(ip("192.0.2.77"), &[]).allowed);
        assert!(!g.decide(ip("198.51.100.1"), &[]).allowed);
        assert!(!g.decide(ip("203.0.113.5"), &[]).allowed, "unknown public address");
        assert!(g.decide(ip("127.0.0.1"), &[]).allowed, "loopback");
        assert!(g.decide(ip("::ffff:192.0.2.9"), &[]).allowed, "IPv4-mapped");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let g = gate(CountrySettings {
            ranges: vec![
                CountryRange { range: "192.0.2.0/24".into(), country: "no".into() },
                CountryRange { range: "198.51.100.0/24".into(), country: "RU".into() },
            ],
            trusted_proxies: vec!["10.0.0.0/8".into()],
            ..CountrySettings::default()
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Straight from the client: its own header is ignored.
        let v = g.decide(ip("198.51.100.9"), &["192.0.2.1"]);
        assert_eq!(
            (v.address, v.country.as_deref(), v.allowed),
            (ip("198.51.100.9"), Some("RU"), false)
        );
        // Through our proxy: the rightmost untrusted hop counts, not what the client wrote.
        let v = g.decide(ip("10.1.2.3"), &["192.0.2.1, 198.51.100.9", "10.0.0.7"]);
        assert_eq!((v.address, v.allowed), (ip("198.51.100.9"), false));
        let v = g.decide(ip("10.1.2.3"), &["192.0.2.1"]);
        assert_eq!(
            (v.address, v.country.as_deref(), v.allowed),
            (ip("192.0.2.1"), Some("NO"), true)
        );
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let e = CountryGate::new(&CountrySettings {
            trusted_proxies: vec!["ten.0.0.1".into()],
            ..CountrySettings::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("countries.trusted_proxies: 'ten.0.0.1'"), "{e}");
    }
}
