"""The only layer that talks to hardware libraries (pyscard, python-pkcs11, hidapi, liblouis)."""
