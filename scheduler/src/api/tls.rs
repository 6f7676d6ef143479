//! What TLS tells the API about a request: the verified client
//! certificate's name, put in each request's extensions for the
//! authentication layer to read ([`ClientCertName`]). The handshake itself
//! is `serve`'s; the configuration is `crate::tls`'s.

use rustls::pki_types::CertificateDer;

/// The subject common name of the client certificate a request's
/// connection presented and the client CA verified. Absent when the
/// client sent none (or the port has no client CA).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientCertName(pub String);

/// The subject CN of `chain`'s leaf. rustls verified the chain in the
/// handshake (a certificate that does not verify ends it), so a name here
/// is one the client CA vouches for. None for no chain, an unparsable
/// leaf, or a subject without a CN.
pub fn client_cert_name(chain: Option<&[CertificateDer<'_>]>) -> Option<ClientCertName> {
    let leaf = chain?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    let name = cn.as_str().ok()?;
    Some(ClientCertName(name.to_owned()))
}

/// A connection's service that adds its client certificate's name (if
/// any) to every request before `inner` sees it.
#[derive(Debug, Clone)]
pub struct WithClientCert<S> {
    /// The service requests go on to.
    pub inner: S,
    /// The connection's verified client certificate name.
    pub name: Option<ClientCertName>,
}

impl<S, B> hyper::service::Service<http::Request<B>> for WithClientCert<S>
where
    S: hyper::service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: http::Request<B>) -> Self::Future {
        if let Some(name) = &self.name {
            request.extensions_mut().insert(name.clone());
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn certificate(common_name: Option<&str>) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "team-a");
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn the_leafs_common_name_names_the_client() {
        let leaf = certificate(Some("alice@example.test"));
        let other = certificate(Some("issuer"));
        assert_eq!(
            client_cert_name(Some(&[leaf, other])),
            Some(ClientCertName("alice@example.test".into()))
        );
        assert_eq!(client_cert_name(Some(&[certificate(None)])), None);
        assert_eq!(client_cert_name(Some(&[])), None);
        assert_eq!(client_cert_name(None), None);
        assert_eq!(
            client_cert_name(Some(&[CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])])),
            None
        );
    }
}
