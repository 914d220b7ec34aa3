use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use l402_core::encoding::{from_base64, from_hex, hex32, to_base64};
use l402_core::identifier::VERSION;
use l402_core::macaroon::Format;
use l402_core::{
    credentials, Credential, Identifier, KeyRing, Macaroon, RevocationList, RootKey, RootKeySource,
    TokenId, Verifier,
};

use crate::args::{Command, KeyArgs, MintArgs, VerifyArgs};
use crate::output::{Decoded, L402Identifier, Verdict};

pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub fn bad_input(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

pub fn bad_usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

pub fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Mint(args) => mint(args),
        Command::Decode { macaroon } => decode(&macaroon),
        Command::Attenuate { macaroon, caveats } => attenuate(&macaroon, &caveats),
        Command::Verify(args) => verify(args),
        Command::Revoke { service, token_ids } => crate::revoke::revoke(&service, &token_ids),
    }
}

fn mint(args: MintArgs) -> Result<ExitCode, Failure> {
    let identifier = match (&args.identifier, &args.payment_hash, &args.token_id) {
        (Some(id), _, _) => hex::decode(id).map_err(|_| bad_usage("--identifier is not hex"))?,
        (None, Some(hash), Some(token)) => {
            let payment_hash = hex32(hash.as_bytes())
                .ok_or_else(|| bad_usage("--payment-hash is not 64 hex digits"))?;
            let token_id = TokenId::from_hex(token)
                .ok_or_else(|| bad_usage("--token-id is not 64 hex digits"))?;
            Identifier {
                payment_hash,
                token_id,
            }
            .encode()
            .to_vec()
        }
        _ => {
            return Err(bad_usage(
                "give --identifier, or --payment-hash with --token-id",
            ))
        }
    };
    let root_key = match key_source(&args.keys)? {
        RootKeySource::Static(key) => key,
        RootKeySource::Derived(ring) => {
            let id = Identifier::decode(&identifier)
                .map_err(|e| bad_usage(format!("--master-key needs an L402 identifier: {e}")))?;
            ring.root_key(&id.token_id)
                .map_err(|e| bad_usage(e.to_string()))?
        }
    };
    let mut macaroon = Macaroon::new(root_key.as_bytes(), identifier, args.location);
    for caveat in &args.caveats {
        macaroon.add_first_party_caveat(caveat.as_bytes());
    }
    println!("{}", to_base64(&macaroon.encode()));
    Ok(ExitCode::SUCCESS)
}

fn decode(text: &str) -> Result<ExitCode, Failure> {
    let (macaroon, format) = parse_macaroon(text)?;
    let l402 = Identifier::decode(&macaroon.identifier)
        .ok()
        .map(|id| L402Identifier {
            version: VERSION,
            payment_hash: hex::encode(id.payment_hash),
            token_id: id.token_id.to_hex(),
        });
    let decoded = Decoded {
        format: format as u8,
        location: String::from_utf8_lossy(&macaroon.location).into_owned(),
        identifier_hex: hex::encode(&macaroon.identifier),
        l402,
        caveats: caveat_strings(&macaroon),
        third_party_caveats: macaroon.third_party_caveat_count(),
        signature: hex::encode(macaroon.signature),
    };
    print_json(&decoded)?;
    Ok(ExitCode::SUCCESS)
}

fn attenuate(text: &str, caveats: &[String]) -> Result<ExitCode, Failure> {
    let (mut macaroon, _) = parse_macaroon(text)?;
    for caveat in caveats {
        macaroon.add_first_party_caveat(caveat.as_bytes());
    }
    println!("{}", to_base64(&macaroon.encode()));
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let keys = key_source(&args.keys)?;
    let revoked = args
        .revoked
        .iter()
        .map(|t| TokenId::from_hex(t).ok_or_else(|| bad_usage("--revoked is not 64 hex digits")))
        .collect::<Result<Vec<_>, _>>()?;
    let verifier = Verifier::new(keys, RevocationList::new(revoked));
    let now = match args.now {
        Some(now) => now,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| bad_usage("system clock is before 1970; pass --now"))?
            .as_secs() as i64,
    };
    let req = l402_core::Requirement {
        service: &args.service,
        capabilities: &args.capabilities,
        now,
    };

    let credential = match (&args.preimage, &args.macaroon) {
        (Some(preimage), Some(macaroon)) => credential_from_parts(macaroon, preimage),
        _ => {
            let headers = args
                .headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(n, v)| (n.trim().as_bytes(), v.trim_start().as_bytes()))
                        .ok_or_else(|| {
                            bad_usage(format!(
                                "--header `{}` is not `Name: value`",
                                header_name(h)
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            credentials::from_headers(headers).map_err(|e| e.to_string())
        }
    };
    let verdict = credential.and_then(|c| {
        verifier
            .verify(&c, &req)
            .map(|v| (c, v))
            .map_err(|e| e.to_string())
    });
    let (verdict, code) = match verdict {
        Ok((credential, verified)) => (
            Verdict::Valid {
                valid: true,
                token_id: verified.identifier.token_id.to_hex(),
                payment_hash: hex::encode(verified.identifier.payment_hash),
                caveats: caveat_strings(&credential.macaroon),
            },
            ExitCode::SUCCESS,
        ),
        Err(reason) => (
            Verdict::Invalid {
                valid: false,
                reason,
            },
            ExitCode::from(1),
        ),
    };
    print_json(&verdict)?;
    Ok(code)
}

/// The header's name only: a value may hold a credential and is never echoed.
fn header_name(header: &str) -> &str {
    header.split([':', ' ']).next().unwrap_or_default()
}

fn credential_from_parts(macaroon: &str, preimage: &str) -> Result<Credential, String> {
    let preimage = hex32(preimage.trim().as_bytes()).ok_or("preimage is not 64 hex digits")?;
    let (macaroon, _) = parse_macaroon(macaroon).map_err(|f| f.message)?;
    Ok(Credential {
        macaroon,
        preimage,
        source: credentials::Source::Authorization,
    })
}

fn key_source(keys: &KeyArgs) -> Result<RootKeySource, Failure> {
    if let Some(hex) = &keys.root_key {
        let bytes = hex::decode(hex.trim()).map_err(|_| bad_usage("--root-key is not hex"))?;
        let key = RootKey::new(bytes).map_err(|e| bad_usage(format!("--root-key: {e}")))?;
        return Ok(RootKeySource::Static(key));
    }
    if keys.master_keys.is_empty() {
        return Err(bad_usage("give --root-key HEX or --master-key ID:HEX"));
    }
    let secrets = keys
        .master_keys
        .iter()
        .map(|spec| KeyRing::parse_spec(spec))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_usage(format!("--master-key: {e}")))?;
    let ring = KeyRing::new(secrets).map_err(|e| bad_usage(format!("--master-key: {e}")))?;
    Ok(RootKeySource::Derived(ring))
}

/// Hex when the text is hex that starts like a macaroon, base64 otherwise.
fn parse_macaroon(text: &str) -> Result<(Macaroon, Format), Failure> {
    let text = text.trim().as_bytes();
    let bytes = from_hex(text)
        .filter(|b| matches!(b.first(), Some(2 | b'0'..=b'9' | b'a'..=b'f')))
        .or_else(|| from_base64(text))
        .ok_or_else(|| bad_input("macaroon is neither base64 nor hex"))?;
    Macaroon::decode(&bytes).map_err(|e| bad_input(e.to_string()))
}

fn caveat_strings(macaroon: &Macaroon) -> Vec<String> {
    macaroon
        .first_party_caveats()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string(value).map_err(|e| bad_input(e.to_string()))?;
    println!("{text}");
    Ok(())
}
