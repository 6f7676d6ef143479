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
