//! Minting L402 macaroons the way Aperture does: location `lsat`, the 66-byte identifier, then
//! caveats in Aperture's order.

use crate::caveat;
use crate::identifier::{Identifier, TokenId};
use crate::keys::{KeyError, KeyId, KeyRing, RootKey};
use crate::macaroon::Macaroon;

/// Aperture's fixed macaroon location.
pub const LOCATION: &str = "lsat";

/// What a token grants, for [`aperture_caveats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub service: String,
    pub tier: u32,
    pub capabilities: Vec<String>,
    /// Extra `<key>=<value>` caveats, passed through to the backend.
    pub constraints: Vec<(String, String)>,
    /// Unix seconds after which the token stops working, if it expires at all.
    pub valid_until: Option<i64>,
    /// How many requests the token is good for in all, if it is counted.
    pub requests: Option<u64>,
}

/// `services=…`, `<service>_capabilities=…` (even when empty), constraints, `<service>_valid_until=…`,
/// then our `<service>_requests=…` for a counted token (Aperture skips it, so it goes last).
pub fn aperture_caveats(grant: &Grant) -> Vec<String> {
    let mut caveats = vec![
        caveat::services(&grant.service, grant.tier),
        caveat::capabilities(&grant.service, &grant.capabilities),
    ];
    caveats.extend(grant.constraints.iter().map(|(k, v)| format!("{k}={v}")));
    caveats.extend(
        grant
            .valid_until
            .map(|t| caveat::valid_until(&grant.service, t)),
    );
    caveats.extend(grant.requests.map(|n| caveat::requests(&grant.service, n)));
    caveats
}

/// A macaroon for `identifier` with `caveats`, signed with `root_key`.
pub fn mint(root_key: &RootKey, identifier: &Identifier, caveats: &[String]) -> Macaroon {
    let mut macaroon = Macaroon::new(root_key.as_bytes(), identifier.encode().to_vec(), LOCATION);
    for c in caveats {
        macaroon.add_first_party_caveat(c.as_bytes());
    }
    macaroon
}

/// Mints with a root key derived from master secret `key`; `random` fills the token id.
pub fn mint_derived(
    ring: &KeyRing,
    key: KeyId,
    random: [u8; 28],
    payment_hash: [u8; 32],
    caveats: &[String],
) -> Result<(Macaroon, Identifier), KeyError> {
    let identifier = Identifier {
        payment_hash,
        token_id: TokenId::derived(key, random),
    };
    let root_key = ring.root_key(&identifier.token_id)?;
    Ok((mint(&root_key, &identifier, caveats), identifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caveats_follow_aperture_order() {
        let grant = Grant {
            service: "svc".into(),
            tier: 0,
            capabilities: vec!["read".into()],
            constraints: vec![("svc_rate".into(), "5".into())],
            valid_until: Some(99),
            requests: None,
        };
        assert_eq!(
            aperture_caveats(&grant),
            [
                "services=svc:0",
                "svc_capabilities=read",
                "svc_rate=5",
                "svc_valid_until=99"
            ]
        );
        let counted = Grant {
            requests: Some(50),
            ..grant.clone()
        };
        assert_eq!(
            aperture_caveats(&counted).last().unwrap(),
            "svc_requests=50"
        );
        let bare = Grant {
            service: "svc".into(),
            ..Grant::default()
        };
        assert_eq!(
            aperture_caveats(&bare),
            ["services=svc:0", "svc_capabilities="]
        );
    }

    #[test]
    fn minted_macaroon_has_lsat_location_and_verifies() {
        let key = RootKey::new(vec![1; 32]).unwrap();
        let id = Identifier {
            payment_hash: [2; 32],
            token_id: TokenId([3; 32]),
        };
        let m = mint(&key, &id, &["services=svc:0".into()]);
        assert_eq!(m.location, b"lsat");
        assert_eq!(m.identifier, id.encode());
        assert!(m.verify_signature(key.as_bytes()));
        assert!(!m.verify_signature(&[9; 32]));
    }
}
