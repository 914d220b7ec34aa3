// aperture-peer mints and verifies L402s with Aperture's own mint and l402 packages and
// gopkg.in/macaroon.v2, so that envoy-l402's tokens can be checked against the implementation real
// clients are written for. It is a test tool: keys are passed on the command line.
//
//	aperture-peer mint   -root-key HEX -payment-hash HEX -service NAME [-capabilities a,b] [-timeout SECS] [-now UNIX]
//	aperture-peer verify -root-key HEX -service NAME -preimage HEX [-now UNIX] MACAROON_BASE64
//	aperture-peer attenuate -caveat COND=VALUE MACAROON_BASE64
//	aperture-peer header 'Name: value'...   (parses request headers with Aperture's l402.FromHeader)
//	aperture-peer challenge 'WWW-Authenticate value'...   (reads a 402 as Aperture's client does)
//	aperture-peer credential MACAROON_BASE64 PREIMAGE_HEX   (the header Aperture's client sends once paid)
//
// mint prints the macaroon as standard base64; verify prints "valid" or "invalid: <reason>" and
// exits 0 or 1; header prints the macaroon (base64) and preimage found, or exits 1; challenge
// prints JSON {macaroon, invoice, payment_hash, amount_msat}; credential prints "Name: value".
package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/lightninglabs/aperture/l402"
	"github.com/lightninglabs/aperture/mint"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/zpay32"
	"gopkg.in/macaroon.v2"
)

func main() {
	if len(os.Args) < 2 {
		fail(2, "usage: aperture-peer mint|verify|attenuate|header ...")
	}
	var err error
	switch os.Args[1] {
	case "mint":
		err = runMint(os.Args[2:])
	case "verify":
		err = runVerify(os.Args[2:])
	case "attenuate":
		err = runAttenuate(os.Args[2:])
	case "header":
		err = runHeader(os.Args[2:])
	case "challenge":
		err = runChallenge(os.Args[2:])
	case "credential":
		err = runCredential(os.Args[2:])
	default:
		fail(2, "unknown command "+os.Args[1])
	}
	if err != nil {
		fail(1, err.Error())
	}
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, "aperture-peer:", msg)
	os.Exit(code)
}

// fixedSecrets hands out one root key for every identifier, standing in for Aperture's database.
type fixedSecrets [l402.SecretSize]byte

func (s fixedSecrets) NewSecret(context.Context, [32]byte) ([l402.SecretSize]byte, error) {
	return s, nil
}
func (s fixedSecrets) GetSecret(context.Context, [32]byte) ([l402.SecretSize]byte, error) {
	return s, nil
}
func (s fixedSecrets) RevokeSecret(context.Context, [32]byte) error { return nil }

// fixedChallenger returns a known payment hash instead of asking lnd for an invoice.
type fixedChallenger lntypes.Hash

func (c fixedChallenger) NewChallenge(int64) (string, lntypes.Hash, error) {
	return "lnbcrt1interop", lntypes.Hash(c), nil
}
func (c fixedChallenger) Stop() {}

// limiter mirrors Aperture's static service limiter for a single service.
type limiter struct {
	capabilities string
	timeout      int64
	now          func() time.Time
}

func (l limiter) ServiceCapabilities(_ context.Context, s ...l402.Service) ([]l402.Caveat, error) {
	return []l402.Caveat{l402.NewCapabilitiesCaveat(s[0].Name, l.capabilities)}, nil
}
func (l limiter) ServiceConstraints(context.Context, ...l402.Service) ([]l402.Caveat, error) {
	return nil, nil
}
func (l limiter) ServiceTimeouts(_ context.Context, s ...l402.Service) ([]l402.Caveat, error) {
	if l.timeout <= 0 {
		return nil, nil
	}
	return []l402.Caveat{l402.NewTimeoutCaveat(s[0].Name, l.timeout, l.now)}, nil
}

func rootKey(text string) (fixedSecrets, error) {
	var key fixedSecrets
	b, err := hex.DecodeString(text)
	if err != nil || len(b) != len(key) {
		return key, errors.New("-root-key must be 64 hex digits")
	}
	copy(key[:], b)
	return key, nil
}

func clock(now int64) func() time.Time {
	if now == 0 {
		return time.Now
	}
	return func() time.Time { return time.Unix(now, 0) }
}

func runMint(args []string) error {
	fs := flag.NewFlagSet("mint", flag.ExitOnError)
	keyHex := fs.String("root-key", "", "root key, hex")
	hashHex := fs.String("payment-hash", "", "payment hash, hex")
	service := fs.String("service", "", "service name")
	caps := fs.String("capabilities", "", "comma-separated capabilities")
	timeout := fs.Int64("timeout", 0, "seconds of validity, 0 for none")
	now := fs.Int64("now", 0, "unix time, 0 for the clock")
	_ = fs.Parse(args)

	key, err := rootKey(*keyHex)
	if err != nil {
		return err
	}
	hash, err := lntypes.MakeHashFromStr(*hashHex)
	if err != nil {
		return err
	}
	m := mint.New(&mint.Config{
		Secrets:        key,
		Challenger:     fixedChallenger(hash),
		ServiceLimiter: limiter{capabilities: *caps, timeout: *timeout, now: clock(*now)},
		Now:            clock(*now),
	})
	mac, _, err := m.MintL402(context.Background(), l402.Service{Name: *service, Tier: l402.BaseTier, Price: 1})
	if err != nil {
		return err
	}
	return printMacaroon(mac)
}

func runVerify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	keyHex := fs.String("root-key", "", "root key, hex")
	service := fs.String("service", "", "target service")
	preimageHex := fs.String("preimage", "", "preimage, hex")
	now := fs.Int64("now", 0, "unix time, 0 for the clock")
	_ = fs.Parse(args)

	key, err := rootKey(*keyHex)
	if err != nil {
		return err
	}
	mac, err := parseMacaroon(fs.Arg(0))
	if err != nil {
		return err
	}
	preimage, err := lntypes.MakePreimageFromStr(*preimageHex)
	if err != nil {
		return err
	}
	m := mint.New(&mint.Config{Secrets: key, Now: clock(*now)})
	err = m.VerifyL402(context.Background(), &mint.VerificationParams{
		Macaroon:      mac,
		Preimage:      preimage,
		TargetService: *service,
	})
	if err != nil {
		fmt.Println("invalid:", err)
		os.Exit(1)
	}
	fmt.Println("valid")
	return nil
}

func runAttenuate(args []string) error {
	fs := flag.NewFlagSet("attenuate", flag.ExitOnError)
	caveat := fs.String("caveat", "", "condition=value")
	_ = fs.Parse(args)
	mac, err := parseMacaroon(fs.Arg(0))
	if err != nil {
		return err
	}
	c, err := l402.DecodeCaveat(*caveat)
	if err != nil {
		return err
	}
	if err := l402.AddFirstPartyCaveats(mac, c); err != nil {
		return err
	}
	return printMacaroon(mac)
}

func runHeader(args []string) error {
	header := http.Header{}
	for _, line := range args {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return errors.New("header must be 'Name: value'")
		}
		header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	mac, preimage, err := l402.FromHeader(&header)
	if err != nil {
		return err
	}
	b, err := mac.MarshalBinary()
	if err != nil {
		return err
	}
	fmt.Println(base64.StdEncoding.EncodeToString(b), preimage.String())
	return nil
}

func parseMacaroon(text string) (*macaroon.Macaroon, error) {
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("macaroon base64: %w", err)
	}
	mac := &macaroon.Macaroon{}
	return mac, mac.UnmarshalBinary(b)
}

func printMacaroon(mac *macaroon.Macaroon) error {
	b, err := mac.MarshalBinary()
	if err != nil {
		return err
	}
	fmt.Println(base64.StdEncoding.EncodeToString(b))
	return nil
}

// challengeRegex is the pattern Aperture's ClientInterceptor matches WWW-Authenticate values
// against (unexported there, so restated): the first value that matches is used.
var challengeRegex = regexp.MustCompile(`(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"`)

// runChallenge reads challenge header values the way Aperture's client does before paying:
// first matching value, standard base64 macaroon that must unmarshal, invoice decoded with
// zpay32 for regtest, payment hash taken from the invoice.
func runChallenge(values []string) error {
	var m []string
	for _, v := range values {
		if m = challengeRegex.FindStringSubmatch(v); len(m) == 4 {
			break
		}
	}
	if len(m) != 4 {
		return errors.New("no WWW-Authenticate value matches Aperture's client pattern")
	}
	if _, err := parseMacaroon(m[2]); err != nil {
		return fmt.Errorf("macaroon: %w", err)
	}
	invoice, err := zpay32.Decode(m[3], &chaincfg.RegressionNetParams)
	if err != nil {
		return fmt.Errorf("invoice: %w", err)
	}
	if invoice.PaymentHash == nil || invoice.MilliSat == nil {
		return errors.New("invoice has no payment hash or no amount")
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"macaroon":     m[2],
		"invoice":      m[3],
		"payment_hash": hex.EncodeToString(invoice.PaymentHash[:]),
		"amount_msat":  uint64(*invoice.MilliSat),
	})
}

// runCredential builds what Aperture's client sends once paid: the macaroon with a
// `preimage=` caveat, as the gRPC per-RPC credential Aperture's own code produces.
func runCredential(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: credential MACAROON_BASE64 PREIMAGE_HEX")
	}
	mac, err := parseMacaroon(args[0])
	if err != nil {
		return err
	}
	preimage, err := lntypes.MakePreimageFromStr(args[1])
	if err != nil {
		return err
	}
	err = l402.AddFirstPartyCaveats(mac, l402.NewCaveat(l402.PreimageKey, preimage.String()))
	if err != nil {
		return err
	}
	md, err := l402.NewMacaroonCredential(mac, true).GetRequestMetadata(context.Background())
	if err != nil {
		return err
	}
	for name, value := range md {
		fmt.Printf("%s: %s\n", name, value)
	}
	return nil
}
