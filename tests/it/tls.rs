//! `pemba serve --tls-cert FILE --tls-key FILE`: both listeners over TLS with a throwaway
//! self-signed certificate made here (rcgen), checked as clients see it: HTTPS and gRPC
//! over TLS answer, plaintext to a TLS port fails with a clear answer, and a bad
//! certificate or key stops the start with an error naming the file.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spicedb_rs_proto::authzed::api::v1 as pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::process::{ServeProcess, PROCESS_KEY};

/// A certificate for `localhost` and `127.0.0.1`, its key, and both written as PEM files.
struct Certs {
    dir: tempfile::TempDir,
    cert_pem: String,
}

impl Certs {
    fn new() -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_pem = made.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        Certs { dir, cert_pem }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The `pemba serving grpc://` line of the server's log (it follows the HTTP one), once
/// printed.
fn grpc_line(server: &ServeProcess) -> String {
    for _ in 0..500 {
        let log = server.log.lock().unwrap();
        if let Some(rest) = log
            .iter()
            .find_map(|line| line.strip_prefix("pemba serving grpc://"))
        {
            return rest.to_string();
        }
        drop(log);
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no gRPC serving line in {:?}", server.log.lock().unwrap());
}

fn spawn_tls(certs: &Certs) -> (tempfile::TempDir, ServeProcess) {
    let data = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(
        data.path(),
        &[],
        &[
            "--tls-cert",
            path(&certs.cert()),
            "--tls-key",
            path(&certs.key()),
        ],
    );
    (data, server)
}

fn https_agent(certs: &Certs) -> ureq::Agent {
    let root = ureq::tls::Certificate::from_pem(certs.cert_pem.as_bytes()).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .new_agent()
}

#[test]
fn https_and_grpc_over_tls_answer_and_plaintext_is_refused() {
    let certs = Certs::new();
    let (_data, server) = spawn_tls(&certs);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let line = grpc_line(&server);
    assert!(line.ends_with(" over TLS"), "{line}");
    let grpc = line.split_whitespace().next().unwrap().to_string();

    let agent = https_agent(&certs);
    let mut healthz = None;
    for _ in 0..300 {
        if let Ok(response) = agent.get(&format!("{}/healthz", server.base)).call() {
            if response.status().as_u16() == 200 {
                healthz = Some(response);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(healthz.is_some(), "HTTPS /healthz never answered 200");
    let mut schema = agent
        .post(&format!("{}/v1/schema/read", server.base))
        .header("Authorization", &format!("Bearer {PROCESS_KEY}"))
        .send_json(serde_json::json!({}))
        .unwrap();
    assert_eq!(schema.status().as_u16(), 200);
    let text = schema.body_mut().read_to_string().unwrap();
    assert!(text.contains("definition"), "{text}");

    // Plain HTTP to the TLS port: a 400 that says why, not a hang or a garbled reply.
    let address = server.base.trim_start_matches("https://");
    let mut plain = std::net::TcpStream::connect(address).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.contains("plaintext HTTP request to a TLS port"),
        "{answer}"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&certs.cert_pem))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://{grpc}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut schema = pb::schema_service_client::SchemaServiceClient::new(channel);
        let mut request = tonic::Request::new(pb::ReadSchemaRequest {});
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {PROCESS_KEY}").parse().unwrap(),
        );
        let read = schema.read_schema(request).await.unwrap().into_inner();
        assert!(
            read.schema_text.contains("definition"),
            "{}",
            read.schema_text
        );

        // Plaintext gRPC to the TLS port gets no answer: the server closes the connection
        // (HTTP/2 cannot carry an error before TLS), which tonic reports as a transport
        // error and grpc-go as UNAVAILABLE.
        let plain = Channel::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5));
        let refused = match plain.connect().await {
            Err(error) => format!("connect: {error}"),
            Ok(channel) => {
                let mut schema = pb::schema_service_client::SchemaServiceClient::new(channel);
                let status = schema
                    .read_schema(pb::ReadSchemaRequest {})
                    .await
                    .unwrap_err();
                assert!(
                    matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown
                    ),
                    "{status:?}"
                );
                status.to_string()
            }
        };
        assert!(!refused.is_empty());
    });
    drop(server.terminate());
}

/// A bad certificate or key is refused at start-up, naming the file and what is wrong,
/// before anything is served.
#[test]
fn bad_certificate_or_key_files_stop_the_start() {
    let certs = Certs::new();
    let other = Certs::new();
    let junk = certs.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let missing = certs.dir.path().join("missing.pem");
    let cases: [(&Path, &Path, &Path, &str); 5] = [
        (
            &missing,
            &certs.key(),
            &missing,
            "cannot read the TLS certificate",
        ),
        (&certs.cert(), &missing, &missing, "cannot read the TLS key"),
        (
            &junk,
            &certs.key(),
            &junk,
            "holds no `BEGIN CERTIFICATE` block",
        ),
        (&certs.cert(), &junk, &junk, "holds no PEM private key"),
        (
            &certs.cert(),
            &other.key(),
            &other.key(),
            "does not fit certificate",
        ),
    ];
    for (cert, key, named, says) in cases {
        let data = tempfile::tempdir().unwrap();
        let failure = match ServeProcess::try_spawn(
            data.path(),
            &[],
            &["--tls-cert", path(cert), "--tls-key", path(key)],
        ) {
            Ok(server) => panic!("started with {cert:?} and {key:?}: {:?}", server.log),
            Err(failure) => failure,
        };
        assert_eq!(
            failure.status.and_then(|s| s.code()),
            Some(2),
            "{failure:?}"
        );
        assert!(failure.stderr.contains(says), "{says}: {}", failure.stderr);
        assert!(
            failure.stderr.contains(&format!("`{}`", named.display())),
            "names {named:?}: {}",
            failure.stderr
        );
    }
    // Half a pair is a usage error.
    let data = tempfile::tempdir().unwrap();
    let failure = ServeProcess::try_spawn(data.path(), &[], &["--tls-cert", path(&certs.cert())])
        .err()
        .unwrap();
    assert!(failure.stderr.contains("--tls-key"), "{}", failure.stderr);
}
