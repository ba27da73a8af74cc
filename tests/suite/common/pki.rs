//! A private CA for the tests of TLS: a server certificate for `localhost`
//! and client certificates, all written as PEM files into a directory.

use std::path::{Path, PathBuf};

pub struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    dir: PathBuf,
}

impl Pki {
    /// A new CA, its certificate written to `dir/ca.pem`.
    pub fn new(dir: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Self {
            ca,
            ca_key,
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for `name` signed by the CA: (certificate PEM, key PEM),
    /// also written as `dir/<file>.pem` and `dir/<file>.key`.
    pub fn issue(&self, name: &str, file: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &self.ca, &self.ca_key)
            .unwrap();
        let (cert, key) = (cert.pem(), key.serialize_pem());
        std::fs::write(self.dir.join(format!("{file}.pem")), &cert).unwrap();
        std::fs::write(self.dir.join(format!("{file}.key")), &key).unwrap();
        (cert, key)
    }
}
