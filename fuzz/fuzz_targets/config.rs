//! Arbitrary text as an injected cluster file, configmeta.json and SPARKVISOR_SETTINGS: parsing,
//! the nesting bound and the key index must never panic, and a refused file names itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkvisor::config::source::SourceText;
use sparkvisor::config::{cluster_file, configmeta, scan};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(d) = cluster_file::parse(&SourceText::new("c.yaml", text)) {
        assert_eq!(d.file, "c.yaml");
    }
    if let Err(d) = configmeta::parse(&SourceText::new("m.json", text)) {
        assert_eq!(d.file, "m.json");
    }
    let _ = cluster_file::parse_document::<cluster_file::Settings>(&SourceText::new("s", text));
    let index = scan::KeyIndex::new(text);
    let _ = index.get("role");
    let _ = scan::check_nesting("c.yaml", text);
});
