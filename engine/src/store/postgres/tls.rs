//! TLS to PostgreSQL: the URL's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`, with
//! libpq's meanings, as a rustls connector.
//!
//! `postgres::Config` knows only `disable`, `prefer` and `require` and none of the files,
//! so they are taken out of the URL here; `verify-ca` and `verify-full` reach the client
//! as `require`, and what is checked lives in the rustls configuration. `allow` reaches it
//! as `disable`, and the connection manager retries with TLS when the server refuses
//! (`ConnectOptions::connect` in `postgres.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StorageError;

/// libpq's `sslmode`s, by what each one checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SslMode {
    /// Plain TCP.
    Disable,
    /// Plain first; TLS (the certificate not checked) when the server refuses that.
    Allow,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS, the certificate not checked (unless `sslrootcert` is given: then as `VerifyCa`).
    Require,
    /// TLS, the certificate chain checked against the roots, not the host name.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

/// The URL's TLS settings, and the URL without the ones `postgres::Config` rejects.
pub(super) struct TlsSettings {
    /// What the TLS connection checks.
    pub(super) mode: SslMode,
    /// `sslrootcert`: a PEM file of roots, or `system` for the system's roots.
    pub(super) root_cert: Option<String>,
    /// `sslcert` and `sslkey`: the PEM files of a client certificate (chain) and its key,
    /// presented when the server asks for one.
    pub(super) client_cert: Option<(PathBuf, PathBuf)>,
    /// The URL to hand `postgres::Config`: the files removed, `verify-*` as `require`,
    /// `allow` as `disable`.
    pub(super) url: String,
}

/// Takes `sslmode`, `sslrootcert`, `sslcert` and `sslkey` out of `url`'s query.
pub(super) fn split_url(url: &str) -> Result<TlsSettings, StorageError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let (mut cert_file, mut key_file) = (None, None);
    let mut kept = Vec::new();
    for param in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8_lossy()
            .into_owned();
        match key {
            "sslmode" => {
                mode = match value.as_str() {
                    "disable" => SslMode::Disable,
                    "allow" => SslMode::Allow,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(StorageError::Unavailable {
                            reason: format!(
                                "invalid `sslmode` `{other}` in the datastore URL: expected \
                                 `disable`, `allow`, `prefer`, `require`, `verify-ca` or \
                                 `verify-full`"
                            ),
                        })
                    }
                };
                let as_client = match mode {
                    SslMode::Disable | SslMode::Allow => "disable",
                    SslMode::Prefer => "prefer",
                    SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
                };
                kept.push(format!("sslmode={as_client}"));
            }
            "sslrootcert" => root_cert = Some(value),
            "sslcert" => cert_file = Some(PathBuf::from(value)),
            "sslkey" => key_file = Some(PathBuf::from(value)),
            _ => kept.push(param.to_string()),
        }
    }
    let client_cert = match (cert_file, key_file) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            return Err(StorageError::Unavailable {
                reason: "the datastore URL names only one of `sslcert` and `sslkey`: a client \
                         certificate needs both"
                    .to_string(),
            })
        }
    };
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(TlsSettings {
        mode,
        root_cert,
        client_cert,
        url,
    })
}

/// The connector for `settings`: every mode gets one (with `disable` the client never
/// starts TLS), so the pool has one type.
pub(super) fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, StorageError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_setup_error(&e))?;
    // libpq: with a root certificate at hand, `require` checks the chain as `verify-ca`.
    let mode = match (settings.mode, &settings.root_cert) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (mode, _) => mode,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer | SslMode::Require => {
            Arc::new(AnyCertificate { provider })
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = roots(settings.root_cert.as_deref())?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_setup_error(&e))?;
            if mode == SslMode::VerifyCa {
                Arc::new(AnyHostName { webpki })
            } else {
                webpki
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    // With `disable` no TLS starts, and libpq never reads the files.
    let identity = settings
        .client_cert
        .as_ref()
        .filter(|_| settings.mode != SslMode::Disable);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let (chain, private) = client_identity(cert, key)?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                StorageError::Unavailable {
                    reason: format!(
                        "the client certificate `{}` and key `{}` do not go together: {e}",
                        cert.display(),
                        key.display()
                    ),
                }
            })?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The certificate chain in `cert` and the private key in `key` (PEM: PKCS#8, PKCS#1 or
/// SEC1). As libpq does, a key file that others may read is refused: group or world
/// access is allowed only to a root-owned file, and then at most group read (0640).
fn client_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), StorageError> {
    let unreadable =
        |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| StorageError::Unavailable {
            reason: format!("cannot read `{what}` `{}`: {e}", path.display()),
        };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| unreadable("sslcert", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable("sslcert", cert, &e))?;
    if chain.is_empty() {
        return Err(unreadable("sslcert", cert, &"no PEM certificate in it"));
    }
    let metadata = std::fs::metadata(key).map_err(|e| unreadable("sslkey", key, &e))?;
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = metadata.permissions().mode() & 0o777;
        let too_open = if metadata.uid() == 0 {
            mode & 0o037 != 0
        } else {
            mode & 0o077 != 0
        };
        if too_open {
            return Err(StorageError::Unavailable {
                reason: format!(
                    "the `sslkey` file `{}` has group or world access (mode {mode:04o}): \
                     make it 0600, or 0640 if root owns it",
                    key.display()
                ),
            });
        }
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable("sslkey", key, &e))?;
    Ok((chain, private))
}

fn tls_setup_error(error: &dyn std::fmt::Display) -> StorageError {
    StorageError::Unavailable {
        reason: format!("cannot set up TLS to the datastore: {error}"),
    }
}

/// The roots `sslrootcert` names: a PEM file, or `system` (and when unset) the system's.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore, StorageError> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) if path != "system" => {
            let path = PathBuf::from(path);
            let unreadable = |e: &dyn std::fmt::Display| StorageError::Unavailable {
                reason: format!("cannot read `sslrootcert` `{}`: {e}", path.display()),
            };
            let certs = CertificateDer::pem_file_iter(&path)
                .map_err(|e| unreadable(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable(&e))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(unreadable(&"no usable PEM certificate in it"));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(StorageError::Unavailable {
                    reason: "no system root certificates found for `sslmode` `verify-ca` or \
                             `verify-full`: name a PEM file with `sslrootcert`"
                        .to_string(),
                });
            }
        }
    }
    Ok(roots)
}

/// Accepts any server certificate but still checks the handshake signature, so the
/// session is with whoever holds that certificate's key. This is libpq's `require` (and
/// `prefer`) without a root certificate: encryption without authentication of the server.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a root, the host name may be anything.
#[derive(Debug)]
struct AnyHostName {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_leave_the_url_and_verify_modes_reach_the_client_as_require() {
        let cases = [
            ("postgres://h/db", SslMode::Prefer, None, "postgres://h/db"),
            (
                "postgres://h/db?sslmode=disable&application_name=x",
                SslMode::Disable,
                None,
                "postgres://h/db?sslmode=disable&application_name=x",
            ),
            (
                "postgres://h/db?sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-full",
                SslMode::VerifyFull,
                Some("/etc/ca.pem"),
                "postgres://h/db?sslmode=require",
            ),
            (
                "postgres://h/db?sslmode=verify-ca&sslrootcert=system&user=u",
                SslMode::VerifyCa,
                Some("system"),
                "postgres://h/db?sslmode=require&user=u",
            ),
        ];
        for (url, mode, root_cert, rest) in cases {
            let Ok(settings) = split_url(url) else {
                unreachable!("`{url}` was refused");
            };
            assert_eq!(settings.mode, mode, "{url}");
            assert_eq!(settings.root_cert.as_deref(), root_cert, "{url}");
            assert_eq!(settings.url, rest, "{url}");
        }
        let Ok(allow) = split_url("postgres://h/db?sslmode=allow&sslcert=c.pem&sslkey=k%2Epem")
        else {
            unreachable!("`allow` was refused");
        };
        assert_eq!(allow.mode, SslMode::Allow);
        assert_eq!(allow.url, "postgres://h/db?sslmode=disable");
        assert_eq!(
            allow.client_cert,
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
        let Err(error) = split_url("postgres://h/db?sslmode=always") else {
            unreachable!("`always` was accepted");
        };
        assert!(error.to_string().contains("invalid `sslmode` `always`"));
        let Err(error) = split_url("postgres://h/db?sslcert=c.pem") else {
            unreachable!("a certificate without a key was accepted");
        };
        assert!(error
            .to_string()
            .contains("only one of `sslcert` and `sslkey`"));
    }
}
