//! Test certificates, made at test time (rcgen): a CA, server
//! certificates for `localhost` and `127.0.0.1` signed by it, and client
//! certificates with a common name, each written as PEM files into a
//! test's directory for the binaries' `--tls-*` flags.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use std::path::{Path, PathBuf};

/// A test CA that signs certificates into `dir`.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    /// The CA certificate's PEM file (what clients trust).
    pub ca_file: PathBuf,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The certificate's DER bytes, to compare with what a server sent.
    pub der: Vec<u8>,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `dir/NAME-ca.pem`.
    #[track_caller]
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let key = KeyPair::generate().expect("generate a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, issuer.pem()).expect("write the CA certificate");
        TestCa {
            issuer,
            dir: dir.to_owned(),
            ca_file,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`, written as
    /// `FILE.pem` and `FILE-key.pem`.
    #[track_caller]
    pub fn server(&self, file: &str) -> CertFiles {
        self.issue(
            file,
            "localhost",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose subject common name is `name`.
    #[track_caller]
    pub fn client(&self, file: &str, name: &str) -> CertFiles {
        self.issue(file, name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    #[track_caller]
    fn issue(
        &self,
        file: &str,
        common_name: &str,
        names: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
    ) -> CertFiles {
        let mut params = CertificateParams::new(names).expect("valid names");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("generate a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a certificate");
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}-key.pem")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write a certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write a key");
        files
    }
}
