"""A real Lightning regtest network on loopback: btcd, a merchant lnd ("alice") and a payer lnd
("bob") with a funded, active channel from bob to alice.

Contract (used by the end-to-end tests, the invoice-service tests, the benchmark and the demo):

    with Regtest(workdir) as net:        # or net = Regtest(workdir); net.start(); ...; net.stop()
        net.alice.rest_url               # https://127.0.0.1:<port>
        net.alice.tls_cert               # Path of alice's tls.cert (pin it)
        net.invoice_macaroon             # Path of a baked invoices:read/write macaroon
        net.bob.pay(bolt11)              # -> preimage hex
        net.alice.invoice(payment_hash)  # -> lnd's invoice JSON
        net.alice.stop(); net.alice.start()

Binaries come from scripts/build-lightning.sh (pinned btcd and lnd built from Go modules into
the cache, never into the tree). All ports are free loopback ports, all data lives under
`workdir`, and every process is stopped by its own pid on exit or failure.
"""

import json
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from procs import ROOT, Process, free_port, wait_for

RPC_USER = "regtest"
RPC_PASS = "regtest"
# Segwit activates at height 432 on btcd's regtest; coinbase outputs mature after 100 blocks.
FUNDING_BLOCKS = 500
CHANNEL_SAT = 5_000_000


def lightning_bin() -> Path:
    """The cache directory holding btcd, btcctl, lnd, lncli, built on first use."""
    out = subprocess.run([str(ROOT / "scripts" / "build-lightning.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return Path(out.strip().splitlines()[-1])


class Btcd:
    def __init__(self, bin_dir: Path, workdir: Path):
        self.bin_dir = bin_dir
        self.dir = workdir / "btcd"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "btcd.conf").write_text("")
        (self.dir / "btcctl.conf").write_text("")
        self.rpc_port = free_port()
        self.p2p_port = free_port()
        self.cert = self.dir / "rpc.cert"
        self.process = None

    def start(self, mining_address: str | None = None):
        args = [str(self.bin_dir / "btcd"), "-C", str(self.dir / "btcd.conf"), "--regtest",
                f"--datadir={self.dir / 'data'}", f"--logdir={self.dir / 'logs'}",
                f"--rpcuser={RPC_USER}", f"--rpcpass={RPC_PASS}",
                f"--rpclisten=127.0.0.1:{self.rpc_port}", f"--listen=127.0.0.1:{self.p2p_port}",
                f"--rpccert={self.cert}", f"--rpckey={self.dir / 'rpc.key'}", "--txindex"]
        if mining_address:
            args.append(f"--miningaddr={mining_address}")
        self.process = Process("btcd", args, self.dir / "btcd.out")
        wait_for(lambda: self.ctl("getblockcount") is not None, 30, "btcd RPC", self.process)

    def stop(self):
        if self.process:
            self.process.stop()
            self.process = None

    def ctl(self, *args):
        """btcctl's output (JSON when it is JSON), or None if the RPC failed."""
        cmd = [str(self.bin_dir / "btcctl"), "-C", str(self.dir / "btcctl.conf"), "--regtest",
               f"--rpcuser={RPC_USER}", f"--rpcpass={RPC_PASS}",
               f"--rpcserver=127.0.0.1:{self.rpc_port}", f"--rpccert={self.cert}", *args]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return None
        out = done.stdout.strip()
        try:
            return json.loads(out)
        except ValueError:
            return out

    def mine(self, blocks: int):
        # btcd's `generate` mines to --miningaddr; large counts are done in chunks.
        while blocks > 0:
            n = min(blocks, 100)
            if self.ctl("generate", str(n)) is None:
                raise RuntimeError("btcd could not mine (is --miningaddr set?)")
            blocks -= n


class Lnd:
    def __init__(self, name: str, bin_dir: Path, workdir: Path, btcd: Btcd):
        self.name = name
        self.bin_dir = bin_dir
        self.btcd = btcd
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rpc_port = free_port()
        self.rest_port = free_port()
        self.p2p_port = free_port()
        self.tls_cert = self.dir / "tls.cert"
        self.admin_macaroon = self.dir / "data" / "chain" / "bitcoin" / "regtest" / "admin.macaroon"
        self.process = None
        self.pubkey = None

    @property
    def rest_url(self) -> str:
        return f"https://127.0.0.1:{self.rest_port}"

    def start(self):
        args = [str(self.bin_dir / "lnd"), f"--lnddir={self.dir}", f"--configfile={self.dir / 'lnd.conf'}",
                "--bitcoin.regtest", "--bitcoin.node=btcd",
                f"--btcd.rpchost=127.0.0.1:{self.btcd.rpc_port}", f"--btcd.rpcuser={RPC_USER}",
                f"--btcd.rpcpass={RPC_PASS}", f"--btcd.rpccert={self.btcd.cert}",
                f"--rpclisten=127.0.0.1:{self.rpc_port}", f"--restlisten=127.0.0.1:{self.rest_port}",
                f"--listen=127.0.0.1:{self.p2p_port}", "--tlsextraip=127.0.0.1",
                f"--alias={self.name}", "--noseedbackup", "--nobootstrap", "--debuglevel=info",
                "--bitcoin.defaultchanconfs=1", "--trickledelay=50"]
        (self.dir / "lnd.conf").touch()
        self.process = Process(f"lnd-{self.name}", args, self.dir / "lnd.out")
        wait_for(lambda: self.cli("getinfo") is not None, 90, f"lnd {self.name} RPC", self.process)
        self.pubkey = self.cli("getinfo")["identity_pubkey"]

    def stop(self):
        if self.process:
            self.process.stop()
            self.process = None

    def cli(self, *args, check=False):
        """lncli's JSON output, or None when the command failed (unless `check`)."""
        cmd = [str(self.bin_dir / "lncli"), f"--lnddir={self.dir}", "--network=regtest",
               f"--rpcserver=127.0.0.1:{self.rpc_port}", f"--tlscertpath={self.tls_cert}",
               f"--macaroonpath={self.admin_macaroon}", *args]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            if check:
                raise RuntimeError(f"lncli {' '.join(args)} on {self.name}: {done.stderr.strip()}")
            return None
        try:
            return json.loads(done.stdout)
        except ValueError:
            return done.stdout

    def synced(self) -> bool:
        info = self.cli("getinfo")
        return bool(info and info.get("synced_to_chain"))

    def wait_synced(self, seconds=60):
        wait_for(self.synced, seconds, f"lnd {self.name} synced to chain", self.process)

    def rest(self, method: str, path: str, body=None, macaroon: Path | None = None, timeout=30):
        """Calls lnd's REST API with the admin macaroon (TLS checked against its tls.cert)."""
        context = ssl.create_default_context(cafile=str(self.tls_cert))
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.rest_url}{path}", data=data, method=method)
        request.add_header("Grpc-Metadata-macaroon", (macaroon or self.admin_macaroon).read_bytes().hex())
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            return json.loads(response.read())

    def invoice(self, payment_hash_hex: str) -> dict:
        return self.rest("GET", f"/v1/invoice/{payment_hash_hex}")

    def invoices(self) -> list:
        return self.rest("GET", "/v1/invoices?num_max_invoices=10000").get("invoices", [])

    def invoice_count(self) -> int:
        """Invoices ever added: the add_index of the newest one."""
        newest = self.rest("GET", "/v1/invoices?num_max_invoices=1&reversed=true")
        return int(newest.get("last_index_offset", 0))

    def pay(self, bolt11: str, timeout=60) -> str:
        """Pays `bolt11` through the router; returns the preimage as hex."""
        context = ssl.create_default_context(cafile=str(self.tls_cert))
        body = json.dumps({"payment_request": bolt11, "timeout_seconds": timeout, "fee_limit_sat": 1000})
        request = urllib.request.Request(f"{self.rest_url}/v2/router/send", data=body.encode(), method="POST")
        request.add_header("Grpc-Metadata-macaroon", self.admin_macaroon.read_bytes().hex())
        # The answer is a stream of JSON lines, one per payment update, ending in a final state.
        with urllib.request.urlopen(request, context=context, timeout=timeout + 10) as response:
            for line in response:
                update = json.loads(line)
                if "error" in update:
                    raise RuntimeError(f"{self.name} could not pay: {update['error']}")
                payment = update.get("result", {})
                if payment.get("status") == "SUCCEEDED":
                    return payment["payment_preimage"]
                if payment.get("status") == "FAILED":
                    raise RuntimeError(f"{self.name} could not pay: {payment.get('failure_reason')}")
        raise RuntimeError(f"{self.name}: payment stream ended without a final state")


class Regtest:
    def __init__(self, workdir: Path, bin_dir: Path | None = None, log=print):
        self.workdir = Path(workdir)
        self.log = log
        self.bin_dir = bin_dir or lightning_bin()
        self.btcd = Btcd(self.bin_dir, self.workdir)
        self.alice = Lnd("alice", self.bin_dir, self.workdir, self.btcd)
        self.bob = Lnd("bob", self.bin_dir, self.workdir, self.btcd)
        self.invoice_macaroon = self.workdir / "invoice.macaroon"

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        started = time.time()
        self.log("starting btcd (regtest)")
        self.btcd.start()
        # btcd mines only to --miningaddr, known once bob has a wallet: bob is started once for
        # an address, then btcd again with it. No lnd runs across that restart: one that
        # reconnected to the new btcd mid-rescan was seen never to report synced.
        self.bob.start()
        address = self.bob.cli("newaddress", "p2wkh", check=True)["address"]
        self.bob.stop()
        self.btcd.stop()
        self.btcd.start(mining_address=address)
        self.log("starting lnd alice (merchant) and bob (payer)")
        self.alice.start()
        self.bob.start()
        self.log(f"mining {FUNDING_BLOCKS} blocks to bob (segwit activates at 432)")
        self.btcd.mine(FUNDING_BLOCKS)
        self.alice.wait_synced()
        self.bob.wait_synced()
        wait_for(lambda: int(self.bob.cli("walletbalance")["confirmed_balance"]) > CHANNEL_SAT * 2, 60,
                 "bob's coinbase funds", self.bob.process)
        self.open_channel()
        self.bake_invoice_macaroon()
        self.log(f"regtest network ready in {time.time() - started:.0f} s")

    def open_channel(self):
        self.log(f"bob opens a {CHANNEL_SAT} sat channel to alice")
        self.bob.cli("connect", f"{self.alice.pubkey}@127.0.0.1:{self.alice.p2p_port}", check=True)
        self.bob.cli("openchannel", f"--node_key={self.alice.pubkey}", f"--local_amt={CHANNEL_SAT}", check=True)
        self.btcd.mine(6)
        wait_for(self.channel_active, 60, "channel bob -> alice active", self.bob.process)
        self.wait_routable()

    def channel_active(self, reconnect=False) -> bool:
        if reconnect:
            self.bob.cli("connect", f"{self.alice.pubkey}@127.0.0.1:{self.alice.p2p_port}")
        channels = (self.bob.cli("listchannels", "--active_only") or {}).get("channels", [])
        return any(c.get("remote_pubkey") == self.alice.pubkey for c in channels)

    def wait_routable(self, seconds=60):
        """Pays alice one satoshi until it works: a channel reported active may still refuse
        HTLCs for a moment (its link is not yet eligible), which would fail the first real test."""
        def probe():
            invoice = self.alice.rest("POST", "/v1/invoices", {"value": "1", "memo": "harness probe"})
            try:
                self.bob.pay(invoice["payment_request"], timeout=10)
                return True
            except RuntimeError:
                return False

        wait_for(probe, seconds, "a payment from bob to alice to succeed", self.bob.process, interval=0.5)

    def bake_invoice_macaroon(self):
        """Least privilege for the invoice service: create and read invoices. It cannot move funds
        or read anything else."""
        baked = self.alice.cli("bakemacaroon", "invoices:read", "invoices:write", check=True)
        # lncli prints the macaroon as bare hex, not JSON.
        hex_macaroon = baked["macaroon"] if isinstance(baked, dict) else baked.strip()
        self.invoice_macaroon.write_bytes(bytes.fromhex(hex_macaroon))

    def restart_alice(self):
        """Starts alice again after `alice.stop()` and waits until bob can pay her."""
        self.alice.start()
        self.alice.wait_synced()
        wait_for(lambda: self.channel_active(reconnect=True), 60, "channel bob -> alice active again",
                 self.bob.process)
        self.wait_routable()

    def stop(self):
        for node in (self.bob, self.alice):
            node.stop()
        self.btcd.stop()
