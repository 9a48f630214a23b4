"""What certificates touch outside this host: the CA's OCSP responder and CRL over HTTP
(RFC 6960 appendix A, RFC 5280 4.2.1.13) and the CA's registration-authority protocol."""

from drivers.certificate.http import HttpFailure, HttpRefused, fetch_crl, post_ocsp
from drivers.certificate.ra import RaClient

__all__ = ["HttpFailure", "HttpRefused", "RaClient", "fetch_crl", "post_ocsp"]
