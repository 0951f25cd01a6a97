"""The simulators' test CA lives in :mod:`simulators.tls`; kept here for existing imports."""

from mspwatch.simulators.tls import TlsFiles, make_client_certificate, make_test_ca

__all__ = ["TlsFiles", "make_client_certificate", "make_test_ca"]
