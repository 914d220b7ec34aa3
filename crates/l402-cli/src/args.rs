use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "l402",
    version,
    about = "Mint, decode, attenuate and verify L402 tokens; revoke them through the invoice service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mint a macaroon and print it as standard padded base64.
    Mint(MintArgs),
    /// Print a macaroon's contents as one JSON object.
    Decode {
        /// Base64 (standard or url-safe, padded or not) or hex; V2 or V1.
        macaroon: String,
    },
    /// Append first-party caveats to a macaroon (no key needed) and print it as base64.
    Attenuate {
        macaroon: String,
        #[arg(long = "caveat", required = true)]
        caveats: Vec<String>,
    },
    /// Verify a credential; prints JSON, exits 0 when valid and 1 when not.
    Verify(VerifyArgs),
    /// Revoke token ids in the shared store through the invoice service (`POST /v1/revocations`);
    /// the admin token is read from L402_ADMIN_TOKEN. Prints one JSON line per id.
    Revoke {
        /// The invoice service's base URL, such as http://127.0.0.1:8402.
        #[arg(long)]
        service: String,
        /// Token ids, 64 hex digits each (`x-l402-token-id` upstream, `token_id` in logs).
        #[arg(required = true)]
        token_ids: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The token's root key, hex.
    #[arg(long, conflicts_with = "master_keys")]
    pub root_key: Option<String>,
    /// A master secret `ID:HEX`; root keys are derived per token id. May repeat.
    #[arg(long = "master-key")]
    pub master_keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MintArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The whole identifier, hex.
    #[arg(long, conflicts_with_all = ["payment_hash", "token_id"])]
    pub identifier: Option<String>,
    /// Payment hash, 64 hex digits (with --token-id).
    #[arg(long, requires = "token_id")]
    pub payment_hash: Option<String>,
    /// Token id, 64 hex digits (with --payment-hash).
    #[arg(long, requires = "payment_hash")]
    pub token_id: Option<String>,
    #[arg(long, default_value = l402_core::mint::LOCATION)]
    pub location: String,
    /// A first-party caveat `condition=value`. May repeat; kept in order.
    #[arg(long = "caveat")]
    pub caveats: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The service the request is for.
    #[arg(long)]
    pub service: String,
    /// Current time, unix seconds (default: the system clock).
    #[arg(long)]
    pub now: Option<i64>,
    /// Capabilities the route requires. May repeat.
    #[arg(long = "capability")]
    pub capabilities: Vec<String>,
    /// Revoked token ids, hex. May repeat.
    #[arg(long = "revoked")]
    pub revoked: Vec<String>,
    /// The payment preimage, hex (with MACAROON).
    #[arg(long, requires = "macaroon", conflicts_with = "headers")]
    pub preimage: Option<String>,
    /// A request header `Name: value`. May repeat, as several lines of one request.
    #[arg(long = "header", required_unless_present = "preimage")]
    pub headers: Vec<String>,
    /// The macaroon (base64 or hex), with --preimage.
    pub macaroon: Option<String>,
}
