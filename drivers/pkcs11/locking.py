"""Initialize a privately loaded module with CKF_OS_LOCKING_OK.

python-pkcs11 calls ``C_Initialize(NULL)``, which tells the module that the application
will not call it from several threads at once; SoftHSM2 then runs without its mutexes and
concurrent sessions fail. For a module instance of our own we finalize it and initialize it
again with OS locking allowed, through the module's exported C_Initialize/C_Finalize (the
same library state python-pkcs11 uses, since dlopen returns the loaded object).
"""

from __future__ import annotations

import ctypes

CKF_OS_LOCKING_OK = 0x0000_0002
CKR_OK = 0
CKR_CRYPTOKI_NOT_INITIALIZED = 0x190


class _InitArgs(ctypes.Structure):
    _fields_ = [
        ("CreateMutex", ctypes.c_void_p),
        ("DestroyMutex", ctypes.c_void_p),
        ("LockMutex", ctypes.c_void_p),
        ("UnlockMutex", ctypes.c_void_p),
        ("flags", ctypes.c_ulong),
        ("pReserved", ctypes.c_void_p),
    ]


class OsLocking:
    """C_Finalize / C_Initialize(CKF_OS_LOCKING_OK) on an already loaded module path."""

    def __init__(self, path: str) -> None:
        self._dll = ctypes.CDLL(path)
        self._initialize = self._dll.C_Initialize
        self._initialize.argtypes = [ctypes.c_void_p]
        self._initialize.restype = ctypes.c_ulong
        self._finalize = self._dll.C_Finalize
        self._finalize.argtypes = [ctypes.c_void_p]
        self._finalize.restype = ctypes.c_ulong

    def reinitialize(self) -> None:
        rv = self._finalize(None)
        if rv not in (CKR_OK, CKR_CRYPTOKI_NOT_INITIALIZED):
            raise OSError(f"C_Finalize failed: {rv:#x}")
        args = _InitArgs(None, None, None, None, CKF_OS_LOCKING_OK, None)
        rv = self._initialize(ctypes.byref(args))
        if rv != CKR_OK:
            raise OSError(f"C_Initialize with OS locking failed: {rv:#x}")
