#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The shared store against a real `redis-server` (Debian's, installed by scripts/setup.sh),
//! started on a free loopback port per test: the Lua scripts' arithmetic, what survives what,
//! and the connection options (ACL user, password, TLS with a private CA).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l402_invoicer::metrics::Metrics;
use l402_invoicer::ratelimit::{BucketConfig, Limited};
use l402_invoicer::store::limits::Scope;
use l402_invoicer::store::quota::LeaseAsk;
use l402_invoicer::store::{Redis, Store};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `redis-server` with `extra` arguments, answering PING (or whatever `tls` needs) before this
/// returns.
fn redis_server(dir: &Path, extra: &[&str], tls: bool) -> Server {
    let port = free_port();
    let port_text = port.to_string();
    let mut args = vec![
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ];
    if tls {
        args.extend(["--port", "0", "--tls-port", &port_text]);
    } else {
        args.extend(["--port", &port_text]);
    }
    args.extend(extra);
    let child = Command::new("redis-server")
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}): run scripts/setup.sh quick to install it")
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, port }
}

fn redis(url: String) -> Redis {
    Redis {
        url,
        username: None,
        password: None,
        ca_pem: None,
        connect_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(500),
    }
}

fn open(redis: &Redis) -> Store {
    Store::open(redis, Arc::new(Metrics::default())).unwrap()
}

fn ask<'a>(token_id: &'a str, lease_id: &'a str, limit: u64, want: u32) -> LeaseAsk<'a> {
    LeaseAsk {
        token_id,
        lease_id,
        limit,
        want,
        lapse_ms: 30_000,
        token_expiry: None,
        idle_lifetime_seconds: 3600,
        share: 4,
        done: None,
    }
}

#[tokio::test]
async fn leases_never_exceed_the_count_and_give_backs_are_credited_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = redis_server(dir.path(), &[], false);
    let store = open(&redis(format!("redis://127.0.0.1:{}/0", server.port)));

    // A quarter of what is left, at most `want`, at least 1.
    let first = store.lease(&ask("t", "l1", 50, 100)).await.unwrap();
    assert_eq!((first.granted, first.remaining, first.held), (13, 37, 1));
    let second = store.lease(&ask("t", "l2", 50, 5)).await.unwrap();
    assert_eq!((second.granted, second.remaining, second.held), (5, 32, 2));

    // l1 served 3 of its 13 (1 for the request that asked, 2 more): 10 go back, once.
    assert_eq!(store.give_back("t", "l1", 10).await.unwrap(), 10);
    assert_eq!(
        store.give_back("t", "l1", 10).await.unwrap(),
        0,
        "a second return"
    );
    // A return cannot credit more than the block held beyond its first unit.
    assert_eq!(store.give_back("t", "l2", 99).await.unwrap(), 4);
    assert_eq!(store.give_back("t", "nope", 5).await.unwrap(), 0);

    let mut served = 13 - 10 + (5 - 4);
    let mut n = 0;
    loop {
        n += 1;
        let leased = store
            .lease(&ask("t", &format!("x{n}"), 50, 100))
            .await
            .unwrap();
        if leased.granted == 0 {
            assert_eq!(leased.remaining, 0);
            break;
        }
        served += leased.granted;
    }
    assert_eq!(served, 50, "every unit leased exactly once");
    // The last blocks are still held: nothing left, but not used up either.
    let after = store.lease(&ask("t", "late", 50, 1)).await.unwrap();
    assert_eq!(after.granted, 0);
    assert!(after.held > 0);

    // An attenuated token with a lower count shares the count and gets nothing more.
    let lower = store.lease(&ask("t", "low", 10, 1)).await.unwrap();
    assert_eq!(lower.granted, 0);
}

#[tokio::test]
async fn a_used_up_block_handed_in_with_the_next_lease_is_no_longer_held() {
    let dir = tempfile::tempdir().unwrap();
    let server = redis_server(dir.path(), &[], false);
    let store = open(&redis(format!("redis://127.0.0.1:{}/0", server.port)));
    assert_eq!(store.lease(&ask("t", "l1", 40, 4)).await.unwrap().held, 1);
    let next = LeaseAsk {
        done: Some("l1"),
        ..ask("t", "l2", 40, 4)
    };
    let leased = store.lease(&next).await.unwrap();
    assert_eq!(
        (leased.granted, leased.held),
        (4, 1),
        "only the new block is held"
    );
    assert_eq!(
        store.give_back("t", "l1", 1).await.unwrap(),
        0,
        "nothing to credit"
    );
}

#[tokio::test]
async fn a_lapsed_block_stays_counted_and_its_late_return_credits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = redis_server(dir.path(), &[], false);
    let store = open(&redis(format!("redis://127.0.0.1:{}/0", server.port)));
    let quick = LeaseAsk {
        lapse_ms: 100,
        ..ask("t", "l1", 8, 8)
    };
    assert_eq!(store.lease(&quick).await.unwrap().granted, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = store.lease(&ask("t", "l2", 8, 1)).await.unwrap();
    assert_eq!(
        (next.granted, next.held),
        (1, 0),
        "the lapsed block is forgotten, not returned"
    );
    assert_eq!(store.give_back("t", "l1", 1).await.unwrap(), 0);
    assert_eq!(next.remaining, 5);
}

#[tokio::test]
async fn revocations_come_in_pages_in_order_and_a_wiped_store_starts_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = redis_server(dir.path(), &[], false);
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let store = open(&redis(url.clone()));
    assert_eq!(store.revoke("aa", "e1").await.unwrap(), 1);
    assert_eq!(store.revoke("bb", "e2").await.unwrap(), 2);
    assert_eq!(
        store.revoke("aa", "e3").await.unwrap(),
        1,
        "revoking twice keeps the number"
    );
    let page = store.revoked_after(0, 1, "e9").await.unwrap();
    assert_eq!(
        (page.epoch.as_str(), page.ids.as_slice(), page.last),
        ("e1", &["aa".to_string()][..], 1)
    );
    let page = store.revoked_after(1, 10, "e9").await.unwrap();
    assert_eq!(
        (page.ids.as_slice(), page.last),
        (&["bb".to_string()][..], 2)
    );
    let empty = store.revoked_after(2, 10, "e9").await.unwrap();
    assert!(empty.ids.is_empty() && empty.last == 2);

    // The store loses everything (no persistence) and comes back on the same port.
    let port = server.port;
    drop(server);
    server = redis_server_on(dir.path(), port);
    let mut epoch = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while epoch.is_empty() {
        assert!(Instant::now() < deadline, "the store did not come back");
        if let Ok(page) = store.revoked_after(2, 10, "fresh").await {
            epoch = page.epoch;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(epoch, "fresh", "readers learn the history changed");
    drop(server);
}

fn redis_server_on(dir: &Path, port: u16) -> Server {
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--port", &port.to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server { child, port }
}

#[tokio::test]
async fn shared_buckets_refuse_with_the_scope_that_ran_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = redis_server(dir.path(), &[], false);
    let store = open(&redis(format!("redis://127.0.0.1:{}/0", server.port)));
    let client = BucketConfig {
        burst: 2,
        per_second: 0.01,
    };
    let global = BucketConfig {
        burst: 3,
        per_second: 0.01,
    };
    let a = Scope::Client("10.0.0.0");
    assert_eq!(store.admit(a, client, global).await.unwrap(), Ok(()));
    assert_eq!(store.admit(a, client, global).await.unwrap(), Ok(()));
    assert!(matches!(
        store.admit(a, client, global).await.unwrap(),
        Err(Limited::Client { .. })
    ));
    let b = Scope::Client("10.0.1.0");
    assert_eq!(store.admit(b, client, global).await.unwrap(), Ok(()));
    assert!(matches!(
        store.admit(b, client, global).await.unwrap(),
        Err(Limited::Global { retry_after }) if retry_after > Duration::from_secs(10)
    ));
    assert!(matches!(
        store.admit(Scope::Unknown, client, global).await.unwrap(),
        Err(Limited::Global { .. })
    ));
}

#[tokio::test]
async fn an_acl_user_over_tls_with_a_private_ca_and_never_a_secret_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let server = redis_server(
        dir.path(),
        &[
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
            "--tls-ca-cert-file",
            ca.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
            "--user",
            "default",
            "off",
            "--user",
            "app",
            "on",
            ">s3cret-pass",
            "~*",
            "&*",
            "+@all",
        ],
        true,
    );
    let mut config = redis(format!("rediss://127.0.0.1:{}/0", server.port));
    config.username = Some("app".into());
    config.password = Some("s3cret-pass".into());
    config.ca_pem = Some(std::fs::read(&ca).unwrap());
    let store = open(&config);
    store.ping().await.unwrap();
    assert_eq!(store.lease(&ask("t", "l", 3, 1)).await.unwrap().granted, 1);

    config.password = Some("wrong-pass".into());
    let refused = open(&config).ping().await.unwrap_err().to_string();
    assert!(
        !refused.contains("wrong-pass") && !refused.contains("s3cret"),
        "{refused}"
    );

    config.ca_pem = None;
    config.password = Some("s3cret-pass".into());
    let untrusted = open(&config).ping().await.unwrap_err().to_string();
    assert!(!untrusted.contains("s3cret"), "{untrusted}");
}

#[tokio::test]
async fn a_store_that_is_down_fails_within_the_timeout_and_is_used_again_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let store = open(&redis(format!("redis://127.0.0.1:{port}/0")));
    let started = Instant::now();
    assert!(store.lease(&ask("t", "l", 3, 1)).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let _server = redis_server_on(dir.path(), port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.lease(&ask("t", "l", 3, 1)).await {
            Ok(leased) => {
                assert_eq!(leased.granted, 1);
                break;
            }
            Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "the store came back but was not used"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A CA and a server certificate for 127.0.0.1, made with the `openssl` command.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is missing: run scripts/setup.sh quick");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}
