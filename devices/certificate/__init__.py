"""Certificates (공동인증서): validity and renewal in Korean time, issuance requests, storage
locations, revocation reasons, types and fees, the NPKI disk layout, and the checks a relying
party makes (chain, OCSP, CRL). Pure: no gRPC, store, drivers or simulators."""
