//! The PostgreSQL datastore against a real server (`tests/shared/postgres.rs`): migration,
//! and two replicas (two engines) sharing one database.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

use std::sync::Arc;

use pemba_engine::{
    migrate, CheckArgs, Consistency, Engine, PostgresStore, QueryError, Revision, StorageError,
    Tuple, Update,
};

#[path = "../../tests/shared/postgres.rs"]
mod pg;

const SCHEMA: &str = "
definition user {}
definition doc {
    relation viewer: user
    permission view = viewer
}
";

fn replica(url: &str) -> Engine {
    Engine::with_store(Box::new(PostgresStore::connect(url).unwrap())).unwrap()
}

fn tuple(text: &str) -> Tuple {
    Tuple::parse(text).unwrap()
}

/// Migrates the database at `url`, writes the schema through a replica on it, shares
/// `doc:d` with `user:u` and checks that the replica sees it: the smoke test of a
/// connection setting.
fn migrate_and_share(url: &str) {
    migrate(url).unwrap();
    let engine = replica(url);
    engine.write_schema(SCHEMA).unwrap();
    engine
        .write(vec![Update::touch(tuple("doc:d#viewer@user:u"))], &[])
        .unwrap();
    assert!(can_view(&engine, Consistency::FullyConsistent, "d", "u"));
}

fn can_view(engine: &Engine, consistency: Consistency, doc: &str, user: &str) -> bool {
    let t = tuple(&format!("doc:{doc}#view@user:{user}"));
    engine
        .check(
            consistency,
            CheckArgs::new(&t.resource, &t.relation, &t.subject),
        )
        .unwrap()
        .value
}

#[test]
fn migrate_is_idempotent_and_safe_concurrently_and_serve_refuses_an_unmigrated_database() {
    let url = pg::fresh_database();
    match PostgresStore::connect(&url) {
        Err(StorageError::NotMigrated { .. }) => {}
        Err(other) => panic!("expected NotMigrated, got {other}"),
        Ok(_) => panic!("an unmigrated database was accepted"),
    }
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || migrate(&url).unwrap())
        })
        .collect();
    let outcomes: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(
        outcomes.iter().filter(|m| m.from == 0).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.iter().all(|m| m.to == 1));
    assert_eq!(migrate(&url).unwrap().from, 1);
    replica(&url);
}

#[test]
fn a_revocation_on_one_replica_is_seen_on_another_with_its_token_every_time() {
    let url = pg::fresh_database();
    migrate(&url).unwrap();
    let a = replica(&url);
    let b = replica(&url);
    a.write_schema(SCHEMA).unwrap();
    for run in 0..25 {
        let grant = tuple(&format!("doc:d{run}#viewer@user:eve"));
        let granted = a.write(vec![Update::touch(grant.clone())], &[]).unwrap();
        assert!(can_view(
            &b,
            Consistency::AtLeastAsFresh(granted),
            &format!("d{run}"),
            "eve"
        ));
        let revoked = a.write(vec![Update::delete(grant)], &[]).unwrap();
        assert!(
            !can_view(
                &b,
                Consistency::AtLeastAsFresh(revoked),
                &format!("d{run}"),
                "eve"
            ),
            "run {run}: replica B answered from before the revocation"
        );
        assert!(!can_view(
            &b,
            Consistency::FullyConsistent,
            &format!("d{run}"),
            "eve"
        ));
    }
    // A token no replica wrote is refused, never answered stale.
    let future = Revision(b.revision().0 + 1000);
    let t = tuple("doc:d0#view@user:eve");
    assert!(matches!(
        b.check(
            Consistency::AtLeastAsFresh(future),
            CheckArgs::new(&t.resource, &t.relation, &t.subject)
        ),
        Err(QueryError::Token(_))
    ));
}

#[test]
fn concurrent_writers_on_two_replicas_get_unique_revisions_and_both_end_identical() {
    let url = pg::fresh_database();
    migrate(&url).unwrap();
    let a = Arc::new(replica(&url));
    let b = Arc::new(replica(&url));
    a.write_schema(SCHEMA).unwrap();
    b.catch_up().unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let engine = if w % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| {
                        let t = tuple(&format!("doc:w{w}i{i}#viewer@user:u{i}"));
                        (
                            t.clone(),
                            engine.write(vec![Update::create(t)], &[]).unwrap(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acknowledged: Vec<(Tuple, Revision)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let mut revisions: Vec<Revision> = acknowledged.iter().map(|(_, r)| *r).collect();
    revisions.sort();
    revisions.dedup();
    assert_eq!(
        revisions.len(),
        acknowledged.len(),
        "a revision was handed out twice"
    );
    let newest = *revisions.last().unwrap();
    for engine in [&a, &b] {
        engine.catch_up().unwrap();
        assert_eq!(engine.revision(), newest);
        assert_eq!(engine.relationship_count(), acknowledged.len() as u64);
        for (t, _) in &acknowledged {
            assert!(can_view(
                engine,
                Consistency::MinimizeLatency,
                &t.resource.object_id,
                &t.subject.object.object_id
            ));
        }
    }
    // Every revision from the schema to the newest is in the log once, in order.
    let log = a.changes_after(Revision(0), 10_000).unwrap();
    let numbers: Vec<u64> = log.iter().map(|set| set.revision.0).collect();
    assert_eq!(numbers, (1..=newest.0).collect::<Vec<_>>());
}

#[test]
fn a_replica_reports_how_far_it_is_behind_until_it_catches_up() {
    let url = pg::fresh_database();
    migrate(&url).unwrap();
    let a = replica(&url);
    a.write_schema(SCHEMA).unwrap();
    let b = replica(&url);
    assert_eq!(b.replication_lag().unwrap().revisions, 0);
    assert_eq!(b.replication_lag().unwrap().seconds, 0.0);
    for i in 0..3 {
        a.write(
            vec![Update::touch(tuple(&format!("doc:d{i}#viewer@user:u")))],
            &[],
        )
        .unwrap();
    }
    // B has no tailer here: it stays behind until asked.
    let lag = b.replication_lag().unwrap();
    assert_eq!(lag.revisions, 3);
    assert!(lag.seconds >= 0.0, "{lag:?}");
    b.catch_up().unwrap();
    assert_eq!(b.replication_lag().unwrap().revisions, 0);
    assert!(b.ping_store().is_ok());
    assert_eq!(b.store_kind(), "postgres");
}

#[test]
fn a_batch_large_enough_for_copy_counts_only_new_relationships_and_logs_them_all() {
    let url = pg::fresh_database();
    migrate(&url).unwrap();
    let a = replica(&url);
    a.write_schema(SCHEMA).unwrap();
    let first: Vec<Update> = (0..500)
        .map(|i| Update::touch(tuple(&format!("doc:d{i}#viewer@user:u"))))
        .collect();
    a.write(first, &[]).unwrap();
    // 1500 touches, 500 of them already stored: one COPY batch.
    let batch: Vec<Update> = (0..1500)
        .map(|i| Update::touch(tuple(&format!("doc:d{i}#viewer@user:u"))))
        .collect();
    let revision = a.write(batch, &[]).unwrap();
    let b = replica(&url);
    assert_eq!(b.relationship_count(), 1500);
    let head = PostgresStore::connect(&url).unwrap();
    assert_eq!(
        pemba_engine::Store::head(&head).unwrap().relationships,
        1500
    );
    let logged = a.changes_after(Revision(revision.0 - 1), 10).unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].changes.len(), 1500);
    assert!(can_view(&b, Consistency::MinimizeLatency, "d1499", "u"));
}

#[test]
fn a_copy_batch_skips_stored_relationships_wherever_they_sort_in_it() {
    let url = pg::fresh_database();
    migrate(&url).unwrap();
    let a = replica(&url);
    // Plain and userset subjects side by side: the batch's order (and so its first and
    // last relationship) must be PostgreSQL's, where `group:g#member` sorts before `user:u`.
    a.write_schema(
        "definition user {}
definition group {
    relation member: user
}
definition doc {
    relation viewer: user | group#member
    permission view = viewer
}
",
    )
    .unwrap();
    let relationships = |docs: std::ops::Range<usize>| -> Vec<Update> {
        docs.flat_map(|i| {
            [
                Update::touch(tuple(&format!("doc:d{i:04}#viewer@user:u"))),
                Update::touch(tuple(&format!("doc:d{i:04}#viewer@group:g#member"))),
            ]
        })
        .collect()
    };
    // Into the empty store, after everything stored, and between two stored ranges with
    // nothing stored inside: every one is new.
    a.write(relationships(0..1000), &[]).unwrap();
    a.write(relationships(2000..3000), &[]).unwrap();
    a.write(relationships(1000..1500), &[]).unwrap();
    assert_eq!(a.relationship_count(), 5000);
    // Stored already: the batch's first and last relationship, and one in the middle.
    a.write(
        vec![
            Update::touch(tuple("doc:d3500#viewer@group:g#member")),
            Update::touch(tuple("doc:d3700#viewer@user:u")),
            Update::touch(tuple("doc:d3999#viewer@user:u")),
        ],
        &[],
    )
    .unwrap();
    let revision = a.write(relationships(3500..4000), &[]).unwrap();
    assert_eq!(a.relationship_count(), 6000);
    let stored = PostgresStore::connect(&url).unwrap();
    assert_eq!(
        pemba_engine::Store::head(&stored).unwrap().relationships,
        6000
    );
    // A replica built from the table finds exactly those.
    let b = replica(&url);
    assert_eq!(b.relationship_count(), 6000);
    for doc in ["d0000", "d1499", "d2999", "d3500", "d3700", "d3999"] {
        assert!(
            can_view(&b, Consistency::MinimizeLatency, doc, "u"),
            "{doc}"
        );
    }
    assert!(!can_view(&b, Consistency::MinimizeLatency, "d1500", "u"));
    // The log lists the whole batch, stored ones too, as redb's does.
    let logged = a.changes_after(Revision(revision.0 - 1), 10).unwrap();
    assert_eq!(logged[0].changes.len(), 1000);
}

/// A CA named `ca_name` (PEM) and a server certificate it signed for `127.0.0.1` (PEM
/// chain, PEM key).
fn certificates(ca_name: &str) -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn refusal(url: &str) -> String {
    let result = migrate(url).map(|_| ());
    assert!(
        result.is_err(),
        "`{url}` connected, but should have been refused"
    );
    result.unwrap_err().to_string()
}

#[test]
fn sslmodes_connect_verify_and_refuse_as_libpq_does() {
    let (ca, cert, key) = certificates("pemba test CA");
    let (other_ca, _, _) = certificates("another CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let other_file = dir.path().join("other.pem");
    std::fs::write(&other_file, other_ca).unwrap();
    // TCP only over TLS: a connection that gets in is encrypted.
    let server = pg::Server::start_tls(&cert, &key);
    let base = server.url();

    // require: TLS without checking the certificate; migrate, write, read.
    let url = format!("{base}?sslmode=require");
    migrate_and_share(&url);

    // prefer (also the default): the server offers TLS, so TLS.
    assert!(can_view(
        &replica(&base),
        Consistency::FullyConsistent,
        "d",
        "u"
    ));
    let prefer = replica(&format!("{base}?sslmode=prefer"));
    assert!(can_view(&prefer, Consistency::FullyConsistent, "d", "u"));

    // verify-full and verify-ca against the test's CA.
    let ca_path = ca_file.display();
    let full = format!("{base}?sslmode=verify-full&sslrootcert={ca_path}");
    migrate(&full).unwrap();
    assert!(can_view(
        &replica(&full),
        Consistency::FullyConsistent,
        "d",
        "u"
    ));
    // The certificate names 127.0.0.1, not `localhost`: verify-full refuses the name,
    // verify-ca checks only the chain.
    let port = base
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_once('/'))
        .unwrap()
        .0;
    let by_name = format!("postgres://pemba@localhost:{port}/postgres?hostaddr=127.0.0.1");
    let message = refusal(&format!(
        "{by_name}&sslmode=verify-full&sslrootcert={ca_path}"
    ));
    assert!(message.contains("certificate"), "{message}");
    migrate(&format!(
        "{by_name}&sslmode=verify-ca&sslrootcert={ca_path}"
    ))
    .unwrap();

    // The wrong root: refused, whichever mode checks it (require with a root is verify-ca).
    let other_path = other_file.display();
    for mode in ["verify-full", "verify-ca", "require"] {
        let message = refusal(&format!("{base}?sslmode={mode}&sslrootcert={other_path}"));
        assert!(
            message.contains("TLS handshake: invalid peer certificate: UnknownIssuer"),
            "{mode}: {message}"
        );
    }
    // `pemba serve` (the pool) says why, too.
    let wrong = format!("{base}?sslmode=verify-full&sslrootcert={other_path}");
    let message = PostgresStore::connect(&wrong).err().unwrap().to_string();
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
    // A root file that is missing, and a mode libpq does not have.
    let message = refusal(&format!(
        "{base}?sslmode=verify-full&sslrootcert=/nonexistent.pem"
    ));
    assert!(
        message.contains("cannot read `sslrootcert` `/nonexistent.pem`"),
        "{message}"
    );
    let message = refusal(&format!("{base}?sslmode=always"));
    assert!(message.contains("invalid `sslmode` `always`"), "{message}");

    // disable against a server that takes TCP only over TLS: refused by its pg_hba.conf.
    let message = refusal(&format!("{base}?sslmode=disable"));
    assert!(message.contains("no encryption"), "{message}");
}

/// A CA named `ca_name` (PEM) and a client certificate it signed for the user `user` (its
/// common name; PEM chain, PEM key).
fn client_certificate(ca_name: &str, user: &str) -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, user);
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn sslmode_allow_connects_plain_and_falls_back_to_tls_when_the_server_refuses_plain() {
    // A server that takes TCP only over TLS: the plain attempt is refused, TLS gets in,
    // for the first connection (migrate) and for every pooled one (a replica).
    let (_, cert, key) = certificates("pemba test CA");
    let tls_only = pg::Server::start_tls(&cert, &key);
    let url = format!("{}?sslmode=allow", tls_only.url());
    migrate_and_share(&url);
    assert!(can_view(
        &replica(&url),
        Consistency::FullyConsistent,
        "d",
        "u"
    ));

    // A server without TLS: `allow` connects plain, where `require` is refused.
    let plain_only = pg::Server::start();
    let plain = plain_only.url();
    migrate(&format!("{plain}?sslmode=allow")).unwrap();
    let message = refusal(&format!("{plain}?sslmode=require"));
    assert!(message.contains("does not support TLS"), "{message}");
}

#[test]
fn a_client_certificate_from_the_url_authenticates_where_the_server_demands_one() {
    let (ca, cert, key) = certificates("pemba test CA");
    let (client_ca, client_cert, client_key) = client_certificate("pemba client CA", "pemba");
    let (_, stranger_cert, stranger_key) = client_certificate("another client CA", "pemba");
    let server = pg::Server::start_tls_client_auth(&cert, &key, &client_ca);
    let base = server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    };
    let ca_file = file("ca.pem", &ca, 0o644);
    let cert_file = file("client.crt", &client_cert, 0o644);
    let key_file = file("client.key", &client_key, 0o600);
    let stranger_cert_file = file("stranger.crt", &stranger_cert, 0o644);
    let stranger_key_file = file("stranger.key", &stranger_key, 0o600);
    let open_key_file = file("open.key", &client_key, 0o644);
    let with = |cert: &str, key: &str| {
        format!("{base}?sslmode=verify-full&sslrootcert={ca_file}&sslcert={cert}&sslkey={key}")
    };

    // The certificate the server's CA signed, for the user connecting: in, pool and all.
    let url = with(&cert_file, &key_file);
    migrate(&url).unwrap();
    let engine = replica(&url);
    engine.write_schema(SCHEMA).unwrap();
    engine
        .write(vec![Update::touch(tuple("doc:d#viewer@user:u"))], &[])
        .unwrap();
    assert!(can_view(&engine, Consistency::FullyConsistent, "d", "u"));

    // No certificate, or one from a CA the server does not trust: the server refuses.
    let message = refusal(&format!("{base}?sslmode=verify-full&sslrootcert={ca_file}"));
    assert!(
        message.contains("connection requires a valid client certificate"),
        "{message}"
    );
    let message = refusal(&with(&stranger_cert_file, &stranger_key_file));
    assert!(message.contains("UnknownCA"), "{message}");

    // A key others can read, one file of the two, a file that is not there: refused
    // before connecting, naming what is wrong.
    let message = refusal(&with(&cert_file, &open_key_file));
    assert!(
        message.contains("has group or world access (mode 0644)") && message.contains("open.key"),
        "{message}"
    );
    let message = refusal(&format!("{base}?sslmode=require&sslcert={cert_file}"));
    assert!(
        message.contains("only one of `sslcert` and `sslkey`"),
        "{message}"
    );
    let message = refusal(&with("/nonexistent.crt", &key_file));
    assert!(
        message.contains("cannot read `sslcert` `/nonexistent.crt`"),
        "{message}"
    );
    // A certificate with another's key.
    let message = refusal(&with(&cert_file, &stranger_key_file));
    assert!(message.contains("do not go together"), "{message}");
}
