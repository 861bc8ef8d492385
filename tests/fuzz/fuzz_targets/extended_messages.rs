//! BEP 9 and BEP 11 extended messages: any payload gives a `ut_metadata` or `ut_pex` message or
//! an error, and what is read is written back the same.
#![no_main]

use rivulet::wire::metadata::MetadataMessage;
use rivulet::wire::pex::PexMessage;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = MetadataMessage::decode(data) {
        assert_eq!(MetadataMessage::decode(&m.encode()), Ok(m));
    }
    if let Ok(m) = PexMessage::decode(data) {
        assert_eq!(PexMessage::decode(&m.encode()).map(|m| m.dropped), Ok(m.dropped));
    }
});
