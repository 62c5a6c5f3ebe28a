"""What a failing database or disk means: the ``DatabaseError`` (and its code) for a driver's or the
file system's error. Re-exported by ``tiergate.store.db``; imports no SQLAlchemy.
"""

from __future__ import annotations

from tiergate.errors import DatabaseError


#: What a failing database or disk means, by SQLSTATE (PostgreSQL) or by the words of SQLite's
#: message: (code, what happened, what to do). ``docs/cli.md`` lists the codes.
_PG_STATES = {
    "53100": "disk_full", "53200": "disk_full", "25006": "database_readonly", "55P03": "database_locked",
    "57P01": "database_error", "57P02": "database_error", "57P03": "database_error",
    "08001": "database_error", "08006": "database_error", "3D000": "database_error",
    "28P01": "database_error", "28000": "database_error",
}
_SQLITE_WORDS = (
    ("readonly database", "database_readonly"), ("read-only", "database_readonly"),
    ("database or disk is full", "disk_full"), ("no space left", "disk_full"),
    ("database is locked", "database_locked"), ("database table is locked", "database_locked"),
    ("file is not a database", "not_a_database"), ("file is encrypted", "not_a_database"),
    ("database disk image is malformed", "not_a_database"),
    ("unable to open database", "database_error"), ("disk i/o error", "disk_error"),
)
_ADVICE = {
    "database_readonly": "the database (or its folder) cannot be written. Give this user write access to the "
                         "database file and its folder (SQLite also writes -wal and -shm files next to it), or "
                         "point TIERGATE_DATABASE_URL at a writable database",
    "disk_full": "the disk holding the database is full. Free space (or grow the volume) and run the command again",
    "database_locked": "another process held the database's write lock for too long. Run the command again; if it "
                       "keeps happening, find the process that holds the lock",
    "not_a_database": "the database file is not a SQLite database (or is damaged). Point TIERGATE_DATABASE_URL at the "
                      "right file, or restore it from a backup",
    "database_error": "the database cannot be reached or opened. Check TIERGATE_DATABASE_URL, that the server "
                            "is running and that the file's folder exists and is readable",
    "disk_error": "the disk reported an I/O error. Check the disk and the file system, then run the command again",
}


def database_failure(exc: BaseException, where: str) -> DatabaseError | None:
    """The ``DatabaseError`` a driver or disk failure means (``database_readonly``, ``disk_full``, ...), or None."""
    orig = getattr(exc, "orig", None) or exc
    code = None
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if state in _PG_STATES:
        code = _PG_STATES[state]
    if code is None:
        text = str(orig).lower()
        code = next((found for words, found in _SQLITE_WORDS if words in text), None)
        if code is None and isinstance(orig, OSError):
            import errno

            code = {errno.ENOSPC: "disk_full", errno.EROFS: "database_readonly", errno.EACCES: "database_readonly",
                    errno.EPERM: "database_readonly"}.get(orig.errno or 0)
    if code is None:
        return None
    detail = str(getattr(orig, "strerror", None) or orig).strip().splitlines()[0][:300] if str(orig).strip() else ""
    return DatabaseError(f"{where}: {_ADVICE[code]} ({detail}).", code=code, details={"cause": detail})
