"""``authd backup OUT`` and ``authd restore DUMP`` on a PostgreSQL store.

The backup is ``pg_dump --format=custom`` (one snapshot of the whole database while the nodes
write), written under a temporary name, checked as a restore would check it (loaded into a
staging database, its schema and audit chain verified, the staging database dropped), fsynced
and renamed; an existing file is never overwritten.

The restore: a pg_dump archive staged, checked, re-sealed under the store's current
key-encryption key and only then put in the store's place.

The dump is restored (pg_restore, one transaction) into a staging database beside the store's,
created by the store's own role. There its schema and audit chain are checked, it is migrated,
and a dump taken before a key-encryption-key rotation is re-sealed under the store's current
key (authd/kek/restore.py, as for a SQLite backup). Anything refused there (not a dump, a
newer schema, a tampered trail, a value under a destroyed key) drops the staging database and
leaves the store as it was. Then one transaction renames the store's database aside
(``<name>_before_restore_<time>``, kept for the operator to drop) and the staging database
into its name: the store is replaced at once or not at all, and refused while any session
(a running daemon) has the store open.

What belongs to the database rather than to its contents is not in a dump: its owner, its
grants (``GRANT CONNECT``), its settings (``ALTER DATABASE ... SET``, ``ALTER ROLE ... IN
DATABASE ... SET``). The swap carries them from the store's database to the restored one in
the same transaction, and the restored objects (loaded under the store's role) are given back
the owners they had in the store's database; a grant, setting or owner that cannot be carried
refuses the restore with the store as it was. A role that could not carry the restore through
(no CREATEDB, not the database's owner, not a member of a role owning objects or default
privileges in it; a superuser can) is refused before anything is created. The grants on the
objects and the default privileges are in the dump and loaded with it; what neither the dump
nor the swap carries (the cluster's roles, tablespaces, the database's comment, connection
limit, encoding and locale) is listed in docs/audit.md."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from authd.audit import AuditLog
from authd.audit.signing import KeyRing
from authd.audit.verify import Report, verify
from authd.config import Config
from authd.kek.restore import onto_current_keys_of, read_keys_of
from authd.storage import Database, migrate, open_database
from authd.storage.migrations import available
from devices.errors import BadRequest, WrongState

_MAINTENANCE = ("postgres", "template1")
_CREATED = re.compile(r"^;\s*Archive created at (.+)$", re.MULTILINE)


@dataclass
class DumpRestore:
    created: str  # as pg_restore reports it, "" when it does not
    schema: int
    audit_last_id: int
    report: Report | None
    resealed: int = 0
    current_key: int = 0
    kept_as: str | None = None  # the store's previous database, renamed aside
    witness_moved: Path | None = None
    database: str = ""  # the store's database


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if not versions:
        raise WrongState(f"{name} is not installed (the PostgreSQL client tools): it is "
                         "needed to restore a dump; nothing restored")
    return str(versions[0])


class _Server:
    """The store's PostgreSQL server, reached with the store URL's own role."""

    def __init__(self, url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        self.url = url
        params = conninfo_to_dict(url)
        self.name = str(params.get("dbname") or "")
        if not self.name:
            raise BadRequest("the store URL names no database; name it (postgresql://.../authd)")
        self._password = params.pop("password", None)
        self._params = {k: v for k, v in params.items() if k != "dbname"}

    def url_of(self, database: str) -> str:
        return urlsplit(self.url)._replace(path=f"/{quote(database)}").geturl()

    def conninfo(self, database: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", **self._params, dbname=database)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self._password is not None:
            env["PGPASSWORD"] = str(self._password)  # never on a command line
        return env

    def connect_to(self, database: str, autocommit: bool = True) -> Any:
        """A connection to `database` as the store URL's role, with its password (kept out of
        the conninfo, which pg_dump and pg_restore get on their command line)."""
        import psycopg

        return psycopg.connect(self.conninfo(database), autocommit=autocommit,
                               password=self._password, connect_timeout=10)

    def connect(self, autocommit: bool = True) -> Any:
        """A connection to the server's maintenance database (the first that lets us in)."""
        import psycopg

        last: Exception | None = None
        for database in _MAINTENANCE:
            try:
                return self.connect_to(database, autocommit=autocommit)
            except psycopg.OperationalError as exc:
                last = exc
        raise WrongState(f"cannot reach the PostgreSQL server of the store: "
                         f"{str(last).splitlines()[0] if last else ''}; nothing restored")

    def exists(self, database: str) -> bool:
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (database,)).fetchone() is not None


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(name)


def _archive_created(dump: Path) -> str:
    listed = subprocess.run([pg_tool("pg_restore"), "--list", str(dump)], capture_output=True,
                            text=True, check=False)
    if listed.returncode != 0:
        reason = (listed.stderr.strip().splitlines() or ["unreadable"])[-1]
        raise WrongState(f"{dump} is not a pg_dump archive pg_restore can read ({reason}); "
                         "nothing restored")
    found = _CREATED.search(listed.stdout)
    return found.group(1).strip() if found else ""


def _holds_a_store(db: Database) -> bool:
    row = db.run(lambda tx: tx.one("SELECT to_regclass('schema_migrations') IS NOT NULL"),
                 write=False)
    return bool(row and row[0])


def _check_staged(db: Database, dump: Path, keys: KeyRing | None) -> tuple[int, int,
                                                                          Report | None]:
    if not _holds_a_store(db):
        raise WrongState(f"{dump} is not a dump of an authd store (no schema migrations); "
                         "nothing restored")
    row = db.run(lambda tx: tx.one("SELECT MAX(version) FROM schema_migrations"), write=False)
    version = int(row[0]) if row and row[0] is not None else 0
    known = max(v for v, _, _ in available())
    if not version:
        raise WrongState(f"{dump} is not a dump of an authd store (no schema migrations); "
                         "nothing restored")
    if version > known:
        raise WrongState(f"{dump} has schema {version}, newer than this authd ({known}); "
                         "nothing restored")
    report = None
    if keys is not None and version >= 30:
        report = verify(db, keys)
    last = db.run(lambda tx: tx.one("SELECT MAX(id) FROM audit_log"), write=False) \
        if version >= 30 else None
    return version, int(last[0]) if last and last[0] is not None else 0, report


def restore_dump(cfg: Config, dump: Path, keys: KeyRing | None, *, replace: bool,
                 witness: Path | None, check_only: bool = False) -> DumpRestore:
    server = _Server(cfg.store_url)
    if not dump.is_file():
        raise BadRequest(f"cannot read {dump}: no such file")
    created = _archive_created(dump)
    current = None
    kept: _Kept | None = None
    exists = server.exists(server.name)
    _may_restore(server, replacing=exists and not check_only)
    if exists and not check_only:
        kept = _read_kept(server)
        _may_own(server, kept)
        db = open_database(cfg.store_url, 1)
        try:
            if _holds_a_store(db) and not replace:
                raise WrongState(f"a store exists in database {server.name}: stop the daemons "
                                 "and restore with --replace to overwrite it")
            current = read_keys_of(db)
        finally:
            db.close()
    staging = f"{server.name[:40]}_restoring_{time.strftime('%Y%m%d%H%M%S')}_" \
        f"{secrets.token_hex(3)}"
    with server.connect() as conn:
        conn.execute(_sql("CREATE DATABASE {}", staging))
    swapped = False
    try:
        loaded = subprocess.run(
            [pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction",
             "--dbname", server.conninfo(staging), str(dump)],
            capture_output=True, text=True, env=server.env(), check=False)
        if loaded.returncode != 0:
            reason = (loaded.stderr.strip().splitlines() or ["failed"])[0]
            raise WrongState(f"pg_restore could not load {dump} ({reason}); nothing restored")
        db = open_database(server.url_of(staging), 1)
        try:
            version, last_id, report = _check_staged(db, dump, keys)
            result = DumpRestore(created, version, last_id, report, database=server.name)
            if check_only:
                return result  # a tampered trail is the report's to tell
            if report is not None and not report.ok:
                raise WrongState(f"{dump}: the audit trail in the dump was tampered with "
                                 f"(first bad record {report.first_bad_record}); nothing "
                                 "restored")
            migrate(db)
            result.resealed, result.current_key = onto_current_keys_of(cfg, db, current)
        finally:
            db.close()
        if kept is not None:
            _give_back_owners(server, staging, kept)
        result.kept_as = _swap(server, staging, exists, kept)
        swapped = True
    finally:
        if not swapped:
            with server.connect() as conn:
                conn.execute(_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)", staging))
    if witness is not None and witness.exists():
        result.witness_moved = witness.with_name(
            f"{witness.name}.before-restore-{int(time.time())}")
        os.replace(witness, result.witness_moved)
    _record(cfg, result)
    return result


_RESTORES = ("a restore needs a superuser, or a role with CREATEDB that owns the store's "
             "database and is a member of every role owning an object in it or holding "
             "default privileges there (it creates a staging database, renames the "
             "store's aside and gives the restored objects their owners)")


def _may_restore(server: _Server, replacing: bool) -> None:
    """Refuse, before anything is created, a role that could not carry the restore through."""
    with server.connect() as conn:
        role, superuser, createdb, owns = conn.execute(
            "SELECT current_user, rolsuper, rolcreatedb, (SELECT pg_has_role(current_user, "
            "datdba, 'MEMBER') FROM pg_database WHERE datname = %s) FROM pg_roles "
            "WHERE rolname = current_user", (server.name,)).fetchone()
    if superuser:
        return
    if not createdb:
        why = "it may not create databases (no CREATEDB)"
    elif replacing and not owns:
        why = "it does not own the database"
    else:
        return
    raise WrongState(f"role {role} may not restore database {server.name}: {why}; "
                     f"{_RESTORES}; nothing restored")


def _may_own(server: _Server, kept: _Kept) -> None:
    """The objects of the store's database are given back their owners, and its default
    privileges (``ALTER DEFAULT PRIVILEGES FOR ROLE``) are loaded for their roles: the
    restoring role must be able to act as each of them."""

    owners = sorted({owner for objects in kept.objects for owner in objects.values()})
    with server.connect_to(server.name) as conn:  # pg_database_owner
        row = conn.execute(  # and the roles of its default privileges
            "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
            "array(SELECT o FROM (SELECT unnest(%s::text[]) UNION SELECT "
            "pg_get_userbyid(defaclrole) FROM pg_default_acl) AS r(o) "
            "WHERE NOT pg_has_role(current_user, o, 'MEMBER') ORDER BY o)",
            (owners,)).fetchone()
    assert row is not None  # a SELECT without FROM: one row
    role, superuser, foreign = row
    if foreign and not superuser:
        raise WrongState(f"role {role} may not restore database {server.name}: it is not a "
                         f"member of {', '.join(foreign)}, which own objects or default "
                         f"privileges in it; {_RESTORES}; nothing restored")


def _sql(template: str, *names: str) -> Any:
    from psycopg import sql

    return sql.SQL(template).format(*(_ident(n) for n in names))


def _swap(server: _Server, staging: str, exists: bool, kept: _Kept | None) -> str | None:
    """The staging database into the store's name, the store's aside, in one transaction,
    with the store's database's owner, grants and settings."""
    import psycopg

    aside = f"{server.name[:40]}_before_restore_{time.strftime('%Y%m%d%H%M%S')}" \
        if exists else None
    with server.connect(autocommit=False) as conn:
        try:
            if aside is not None:
                conn.execute(_sql("ALTER DATABASE {} RENAME TO {}", server.name, aside))
            conn.execute(_sql("ALTER DATABASE {} RENAME TO {}", staging, server.name))
            if kept is not None:
                _carry(conn, server.name, kept)
            conn.commit()
        except psycopg.errors.ObjectInUse:
            raise WrongState(f"the store's database {server.name} is in use (are authd "
                             "daemons running?): stop every node, then restore; nothing "
                             "restored") from None
        except psycopg.Error as exc:
            raise WrongState(f"the owner, grants or settings of database {server.name} could "
                             f"not be carried to the restored one ({_first_line(exc)}); "
                             "nothing restored") from None
    return aside


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ------------------------------------------------------------ what a dump does not carry

# The settings whose value is a list pg_dumpall quotes element by element (its
# variable_is_guc_list_quote): set back as one string they would become one element.
_LIST_QUOTED = frozenset({"local_preload_libraries", "search_path", "session_preload_libraries",
                          "shared_preload_libraries", "temp_tablespaces",
                          "unix_socket_directories"})

_GRANTS = """
SELECT pg_get_userbyid(a.grantor),
       CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type, a.is_grantable
  FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = %s"""

_SETTINGS = """
SELECT CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END, c.item
  FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase,
       unnest(s.setconfig) WITH ORDINALITY AS c(item, n)
 WHERE d.datname = %s ORDER BY 1, c.n"""

_NOT_SYSTEM = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
_NO_EXTENSION = ("NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {0}::regclass "
                 "AND e.objid = {1} AND e.deptype = 'e')")

# Every object a schema holds that has an owner of its own, by kind, in the order owners are
# given back (a table's owner carries its indexes, its row type and the sequences it owns).
_OWNED: tuple[tuple[str, str], ...] = (
    ("SCHEMA", f"""
SELECT 'SCHEMA', format('%I', n.nspname), pg_get_userbyid(n.nspowner) FROM pg_namespace n
 WHERE {_NOT_SYSTEM} AND {_NO_EXTENSION.format("'pg_namespace'", "n.oid")}"""),
    ("TABLE", f"""
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                      WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
       format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_NOT_SYSTEM}
   AND {_NO_EXTENSION.format("'pg_class'", "c.oid")}"""),
    ("SEQUENCE", f"""
SELECT 'SEQUENCE', format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND {_NOT_SYSTEM} AND {_NO_EXTENSION.format("'pg_class'", "c.oid")}"""),
    ("FUNCTION", f"""
SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
       format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       pg_get_userbyid(p.proowner)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE {_NOT_SYSTEM} AND {_NO_EXTENSION.format("'pg_proc'", "p.oid")}"""),
    ("TYPE", f"""
SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
       format('%I.%I', n.nspname, t.typname), pg_get_userbyid(t.typowner)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  LEFT JOIN pg_class c ON c.oid = t.typrelid
 WHERE (t.typtype IN ('d', 'e', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
   AND {_NOT_SYSTEM} AND {_NO_EXTENSION.format("'pg_type'", "t.oid")}"""),
)

Owners = dict[tuple[str, str], str]  # (kind, quoted qualified name) -> owning role


@dataclass
class _Kept:
    """What belongs to the store's database, not to its contents, read before the restore."""

    owner: str
    grants: list[tuple[str, str, str, bool]] | None  # grantor, grantee ("" PUBLIC), privilege,
    # grantable; None: the default grants of a new database
    settings: list[tuple[str, str]]  # role ("" every role), "name=value"
    objects: list[Owners]  # by kind, as _OWNED orders them


def _owners(conn: Any, query: str) -> Owners:
    return {(kind, name): owner for kind, name, owner in conn.execute(query)}


def _read_kept(server: _Server) -> _Kept:

    with server.connect() as conn:
        row = conn.execute("SELECT pg_get_userbyid(datdba), datacl IS NULL FROM pg_database "
                           "WHERE datname = %s", (server.name,)).fetchone()
        grants = None if row[1] else [tuple(r) for r in conn.execute(_GRANTS, (server.name,))]
        settings = [(str(r[0]), str(r[1])) for r in conn.execute(_SETTINGS, (server.name,))]
    with server.connect_to(server.name) as conn:
        objects = [_owners(conn, query) for _, query in _OWNED]
    return _Kept(str(row[0]), grants, settings, objects)  # type: ignore[arg-type]


def _give_back_owners(server: _Server, staging: str, kept: _Kept) -> None:
    """The restored objects to the owners they had in the store's database (pg_restore
    --no-owner loads every one under the store's role)."""
    import psycopg
    from psycopg import sql

    try:
        with server.connect_to(staging, autocommit=False) as conn:
            for (_, query), was in zip(_OWNED, kept.objects, strict=True):
                for (kind, name), owner in sorted(_owners(conn, query).items()):
                    if was.get((kind, name), owner) != owner:
                        conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
                            sql.SQL(kind), sql.SQL(name), _ident(was[(kind, name)])))
            conn.commit()
    except psycopg.Error as exc:
        raise WrongState(f"the owners of the objects in database {server.name} could not be "
                         f"carried to the restored ones ({_first_line(exc)}); nothing restored"
                         ) from None


def _split_list(value: str) -> list[str]:
    """A list setting as PostgreSQL flattened it (``"$user", public``), element by element
    (SplitGUCList: double quotes kept together, "" inside them one quote, no downcasing)."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i].isspace():
            i += 1
        item = ""
        if i < n and value[i] == '"':
            i += 1
            while i < n:
                if value[i] == '"':
                    if value[i + 1:i + 2] == '"':
                        item += '"'
                        i += 2
                        continue
                    i += 1
                    break
                item += value[i]
                i += 1
        else:
            start = i
            while i < n and value[i] != ",":
                i += 1
            item = value[start:i].rstrip()
        while i < n and value[i] != ",":
            i += 1
        i += 1  # the comma
        out.append(item)
    return out


def _carry(conn: Any, database: str, kept: _Kept) -> None:
    """Owner, grants and settings of the store's database onto the restored one (the same
    transaction as the swap: all of them or none, and no restore)."""
    from psycopg import sql

    db = _ident(database)
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, _ident(kept.owner)))
    if kept.grants is not None:
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db,
                                                                       _ident(kept.owner)))
        # the owner's grants first: another grantor grants on the option the owner gave it
        for grantor, grantee, privilege, grantable in sorted(
                kept.grants, key=lambda g: (g[0] != kept.owner, g[0], g[1], g[2])):
            if grantor != kept.owner:
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(_ident(grantor)))
            conn.execute(sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                sql.SQL(privilege), db, _ident(grantee) if grantee else sql.SQL("PUBLIC"),
                sql.SQL(" WITH GRANT OPTION" if grantable else "")))
            if grantor != kept.owner:
                conn.execute("RESET ROLE")
        now = sorted(tuple(r) for r in conn.execute(_GRANTS, (database,)))
        if now != sorted(kept.grants):
            raise WrongState(f"the grants on database {database} could not be carried to the "
                             f"restored one as they were (they would be {now}); nothing "
                             "restored")
    for role, item in kept.settings:
        name, sep, value = item.partition("=")
        if not sep:
            continue
        values = [sql.Literal(v) for v in _split_list(value)] if name in _LIST_QUOTED \
            else [sql.Literal(value)]
        target = sql.SQL("ROLE {} IN DATABASE {}").format(_ident(role), db) if role \
            else sql.SQL("DATABASE {}").format(db)
        conn.execute(sql.SQL("ALTER {} SET {} TO {}").format(
            target, _ident(name), sql.SQL(", ").join(values)))


def _record(cfg: Config, result: DumpRestore) -> None:
    db = open_database(cfg.store_url, 1)
    try:
        migrate(db)
        detail: dict[str, Any] = {"dump_created_at": result.created,
                                  "records_up_to": result.audit_last_id}
        if result.resealed:
            detail.update(resealed=result.resealed, under_kek=result.current_key)
        if result.kept_as:
            detail["previous_database"] = result.kept_as
        log = AuditLog()
        db.run(lambda tx: log.record(tx, action="audit.restore", target="audit",
                                     outcome="restored", detail=detail))
    finally:
        db.close()


@dataclass
class DumpBackup:
    path: Path
    size: int
    sha256: str
    checked: DumpRestore


def backup_dump(cfg: Config, out: Path, keys: KeyRing | None) -> DumpBackup:
    """The store into the pg_dump archive ``out``, checked before it is kept."""
    server = _Server(cfg.store_url)
    if out.exists():
        raise BadRequest(f"{out} exists: a backup never overwrites a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        dumped = subprocess.run(
            [pg_tool("pg_dump"), "--format=custom", "--file", str(partial),
             "--dbname", server.conninfo(server.name)],
            capture_output=True, text=True, env=server.env(), check=False)
        if dumped.returncode != 0:
            reason = (dumped.stderr.strip().splitlines() or ["failed"])[0]
            raise WrongState(f"pg_dump could not back up database {server.name} ({reason}); "
                             "no backup written")
        checked = restore_dump(cfg, partial, keys, replace=False, witness=None,
                               check_only=True)
        digest = hashlib.sha256()
        with partial.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
            os.fsync(fh.fileno())
        if out.exists():
            raise BadRequest(f"{out} exists: a backup never overwrites a file")
        os.replace(partial, out)
        fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        partial.unlink(missing_ok=True)
    return DumpBackup(out, out.stat().st_size, digest.hexdigest(), checked)
