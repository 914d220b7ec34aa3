//! TLS to lnd by pinning its certificate.
//!
//! lnd's self-signed `tls.cert` is a CA certificate presented as the end entity, which WebPKI
//! path building (rustls, lnd issue #5450) refuses whatever the trust store. Pinning is the
//! stronger check anyway: the server must present exactly this certificate and prove it holds
//! its key in the handshake signature, which is still verified normally. Host names are not
//! checked; the pin is the identity, so lnd may be reached by IP.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Why lnd's `tls.cert` cannot be pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("holds no PEM certificate (expected lnd's tls.cert)")]
    NoPem,
    #[error("is not a PEM certificate (expected lnd's tls.cert)")]
    NotPem,
    #[error("holds more than one certificate; pin lnd's tls.cert alone")]
    Several,
}

/// Why no TLS client could be set up for lnd.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("lnd's certificate {0}")]
    Certificate(#[from] PinError),
    #[error("TLS versions: {0}")]
    Protocol(#[from] rustls::Error),
}

/// The one certificate in lnd's PEM `tls.cert`.
pub fn pinned_certificate(pem: &[u8]) -> Result<CertificateDer<'static>, PinError> {
    let mut certs = CertificateDer::pem_slice_iter(pem);
    let cert = certs
        .next()
        .ok_or(PinError::NoPem)?
        .map_err(|_| PinError::NotPem)?;
    if certs.next().is_some() {
        return Err(PinError::Several);
    }
    Ok(cert)
}

/// A rustls client configuration that accepts exactly the certificate in `pem`.
pub fn client_config(pem: &[u8]) -> Result<rustls::ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertificate {
        certificate: pinned_certificate(pem)?,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

#[derive(Debug)]
struct PinnedCertificate {
    certificate: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
