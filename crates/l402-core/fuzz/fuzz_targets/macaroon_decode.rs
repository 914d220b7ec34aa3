#![no_main]

use l402_core::{Identifier, Macaroon};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((macaroon, _)) = Macaroon::decode(data) {
        // Whatever decodes must re-encode to something that decodes to the same macaroon.
        let again = Macaroon::decode(&macaroon.encode()).map(|(m, _)| m);
        assert_eq!(again.as_ref(), Ok(&macaroon));
        let _ = Identifier::decode(&macaroon.identifier);
        let _ = macaroon.verify_signature(b"fuzz");
    }
});
