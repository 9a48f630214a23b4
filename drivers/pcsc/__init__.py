"""PC/SC driver: the only package that imports pyscard (`smartcard`).

Modules: `connection` (PcscConnection), `context` (list_readers), `monitor` (ReaderMonitor),
`errors`, and `events` (event types, importable without pyscard).
"""
