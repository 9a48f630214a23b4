"""``authd restore --replace`` of a pg_dump archive keeps what belongs to the store's database
rather than to its contents (a dump does not hold it): the database's owner and grants, its
settings and its roles' settings in it, and the owners of the objects pg_restore loaded under
the store's role. The roles that reached the store before the restore reach it after, with the
same settings; a role that could not connect still cannot."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authd.cli import main as authd_main
from tests.conftest import KEK_PIN_FILE
from tests.pgcluster import PgCluster


@pytest.fixture(autouse=True)
def kek_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHD_KEK__PIN_FILE", str(KEK_PIN_FILE))


def _as(pg_cluster: PgCluster, role: str, database: str) -> Any:
    import psycopg

    base = pg_cluster.url_base.replace("postgresql://postgres@", f"postgresql://{role}@")
    return psycopg.connect(f"{base}/{database}", autocommit=True, connect_timeout=10)


def _seen_by(pg_cluster: PgCluster, role: str, database: str) -> tuple[str, str, str, int]:
    with _as(pg_cluster, role, database) as conn:
        row = conn.execute("SELECT current_setting('statement_timeout'), "
                           "current_setting('search_path'), current_setting('authd.site'), "
                           "(SELECT count(*) FROM audit_log)").fetchone()
    return row[0], row[1], row[2], int(row[3])


def _owners(pg_cluster: PgCluster, database: str) -> tuple[str, str, str, str]:
    import psycopg

    with psycopg.connect(pg_cluster.url(database), autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s), "
            "(SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'otp_devices'), "
            "(SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'), "
            "(SELECT array_to_string(datacl, ',') FROM pg_database WHERE datname = %s)",
            (database, database)).fetchone()
    return row[0], row[1], row[2], row[3]


@dataclass
class _Store:
    """The store's database with roles of a test's own, backed up and restored in place."""

    pg_cluster: PgCluster
    url: str
    dump: Path
    capsys: pytest.CaptureFixture[str]
    roles: dict[str, str]  # what the test calls each role: its name on the cluster
    aside: str = ""  # the database the restore kept the store's previous one as

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[1]

    def run(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def backup(self) -> None:
        assert authd_main(["backup", str(self.dump), "--store", self.url,
                           "--data-dir", str(self.dump.parent)]) == 0

    def restore(self) -> None:
        """``authd restore --replace`` of the backup."""
        self.capsys.readouterr()
        assert authd_main(["restore", str(self.dump), "--replace", "--store", self.url,
                           "--data-dir", str(self.dump.parent)]) == 0
        out = self.capsys.readouterr().out
        self.aside = out.split("kept as database ", 1)[1].split(":", 1)[0]


@contextmanager
def _store_with_roles(server: Callable[..., Any], pg_url: str, pg_cluster: PgCluster,
                      tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      **roles: str) -> Iterator[_Store]:
    """The store (its key on the token, also when a test runs alone) and the `roles` (what
    the test calls each: LOGIN or NOLOGIN); afterwards the roles, the store's database and the
    one a restore kept aside are dropped."""
    server(store_url=pg_url).stop()
    tag = uuid.uuid4().hex[:8]
    store = _Store(pg_cluster, pg_url, tmp_path / "authd.dump", capsys,
                   {role: f"authd_{role}_{tag}" for role in roles})
    for role, may in roles.items():
        pg_cluster.admin(f"CREATE ROLE {store.roles[role]} {may}")
    try:
        yield store
    finally:
        if store.aside:
            pg_cluster.admin(f"DROP DATABASE IF EXISTS {store.aside} WITH (FORCE)")
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {store.name} WITH (FORCE)")
        for name in store.roles.values():
            pg_cluster.admin(f"DROP ROLE IF EXISTS {name}")


def test_a_restored_store_keeps_the_databases_owner_grants_and_settings(
        server, pg_url: str, pg_cluster: PgCluster, tmp_path: Path, capsys) -> None:
    import psycopg

    with _store_with_roles(server, pg_url, pg_cluster, tmp_path, capsys, reader="LOGIN",
                           other="LOGIN", owner="NOLOGIN") as store:
        name, reader, other, owner = (store.name, store.roles["reader"], store.roles["other"],
                                      store.roles["owner"])
        store.run(f"ALTER DATABASE {name} OWNER TO {owner}",
                  f"REVOKE ALL ON DATABASE {name} FROM PUBLIC",
                  f"GRANT CONNECT ON DATABASE {name} TO {reader}",
                  f"GRANT TEMPORARY ON DATABASE {name} TO {reader} WITH GRANT OPTION",
                  f"ALTER DATABASE {name} SET statement_timeout = '7s'",
                  f"ALTER DATABASE {name} SET authd.site = 'seoul, gangnam'",
                  f'ALTER ROLE {reader} IN DATABASE {name} SET search_path = '
                  f'"Reports, 2026", public',
                  f"ALTER TABLE otp_devices OWNER TO {owner}",
                  f"ALTER SCHEMA public OWNER TO {owner}",
                  f"GRANT SELECT ON audit_log TO {reader}")
        seen = _seen_by(pg_cluster, reader, name)
        assert seen[:3] == ("7s", '"Reports, 2026", public', "seoul, gangnam"), seen
        owners = _owners(pg_cluster, name)
        assert owners[:3] == (owner, owner, owner), owners
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            _as(pg_cluster, other, name).close()

        store.backup()
        store.run("DELETE FROM otp_devices")  # a change the restore takes back
        store.restore()

        # The same roles reach the restored store, with the same settings and owners.
        assert _seen_by(pg_cluster, reader, name) == (seen[0], seen[1], seen[2], seen[3] + 1)
        assert _owners(pg_cluster, name) == owners
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            _as(pg_cluster, other, name).close()


def test_a_restore_whose_settings_cannot_be_carried_changes_nothing(
        server, pg_url: str, pg_cluster: PgCluster, tmp_path: Path, capsys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The carrying is part of the swap's transaction: when one of them fails, the store's
    database keeps its name and contents, and the staging database is dropped."""
    import psycopg

    from authd import pg_backup

    server(store_url=pg_url).stop()  # the store, its key on the token, also when run alone
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} SET statement_timeout = '7s'")
    dump = tmp_path / "authd.dump"
    assert authd_main(["backup", str(dump), "--store", pg_url,
                       "--data-dir", str(tmp_path)]) == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE after_the_dump (id integer)")  # a restore would drop it
    carry = pg_backup._carry

    def failing(conn: Any, database: str, kept: Any) -> None:
        carry(conn, database, kept)
        conn.execute("ALTER DATABASE authd_no_such_database SET work_mem = '8MB'")

    monkeypatch.setattr(pg_backup, "_carry", failing)
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        before = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    capsys.readouterr()
    assert authd_main(["restore", str(dump), "--replace", "--store", pg_url,
                       "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"the owner, grants or settings of database {name} could not be carried" in err, err
    assert "nothing restored" in err
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        assert {r[0] for r in conn.execute("SELECT datname FROM pg_database")} == before
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('after_the_dump') IS NOT NULL"
                            ).fetchone() == (True,)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("7s",)


@pytest.mark.parametrize(("may", "owns", "why"), [
    ("LOGIN", False, "it may not create databases (no CREATEDB)"),
    ("LOGIN CREATEDB", False, "it does not own the database"),
    ("LOGIN CREATEDB", True, "it is not a member of postgres, which own objects or default "
                             "privileges in it"),
])
def test_a_restore_by_a_role_without_the_privileges_is_refused_and_changes_nothing(
        server, pg_url: str, pg_cluster: PgCluster, tmp_path: Path, capsys, may: str,
        owns: bool, why: str) -> None:
    """A restore creates a staging database, renames the store's aside and the staging one
    into its name, and gives the objects back their owners: a role that may not do all of it
    (no CREATEDB; not the store's database's owner; not able to act as its objects' owner) is
    refused before anything is created, with the reason, and the store is left as it was."""
    import psycopg

    server(store_url=pg_url).stop()  # the store, its key on the token, also when run alone
    name = pg_url.rsplit("/", 1)[1]
    dump = tmp_path / "authd.dump"
    assert authd_main(["backup", str(dump), "--store", pg_url,
                       "--data-dir", str(tmp_path)]) == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE after_the_dump (id integer)")  # a restore would drop it
    role = f"authd_clerk_{uuid.uuid4().hex[:8]}"
    pg_cluster.admin(f"CREATE ROLE {role} {may}")
    try:
        if owns:
            pg_cluster.admin(f"ALTER DATABASE {name} OWNER TO {role}")
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            before = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        as_role = pg_url.replace("postgresql://postgres@", f"postgresql://{role}@")
        capsys.readouterr()
        assert authd_main(["restore", str(dump), "--replace", "--store", as_role,
                           "--data-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"role {role} may not restore database {name}: {why}" in err, err
        assert "nothing restored" in err and "Traceback" not in err
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            assert {r[0] for r in conn.execute("SELECT datname FROM pg_database")} == before
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('after_the_dump') IS NOT NULL"
                                ).fetchone() == (True,)
    finally:
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        pg_cluster.admin(f"DROP ROLE IF EXISTS {role}")


def _default_privileges(pg_cluster: PgCluster, database: str) -> list[tuple[str, str, str]]:
    import psycopg

    with psycopg.connect(pg_cluster.url(database), autocommit=True) as conn:
        return sorted((str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(
            "SELECT pg_get_userbyid(defaclrole), COALESCE(n.nspname, ''), "
            "array_to_string(defaclacl, ',') FROM pg_default_acl d "
            "LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace "
            "ORDER BY 1, 2, d.defaclobjtype"))


def test_a_restored_store_keeps_its_default_privileges(
        server, pg_url: str, pg_cluster: PgCluster, tmp_path: Path, capsys) -> None:
    """``ALTER DEFAULT PRIVILEGES`` belongs to the database's contents: pg_dump holds it and
    the restore loads it, for the store's role and for another, in a schema and everywhere, so
    a table created after the restore is granted as one created before it."""
    with _store_with_roles(server, pg_url, pg_cluster, tmp_path, capsys, reader="LOGIN",
                           maker="NOLOGIN") as store:
        name, reader, maker = store.name, store.roles["reader"], store.roles["maker"]
        store.run(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES "
                  f"TO {reader}",
                  f"ALTER DEFAULT PRIVILEGES GRANT USAGE ON SEQUENCES TO {reader}",
                  f"ALTER DEFAULT PRIVILEGES FOR ROLE {maker} REVOKE EXECUTE ON FUNCTIONS "
                  f"FROM PUBLIC",
                  f"GRANT CREATE ON SCHEMA public TO {maker}")
        defaults = _default_privileges(pg_cluster, name)
        assert len(defaults) == 3, defaults
        store.backup()
        store.run(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES "
                  f"FROM {reader}")  # taken back by the restore
        assert _default_privileges(pg_cluster, name) != defaults
        store.restore()

        assert _default_privileges(pg_cluster, name) == defaults
        store.run("CREATE TABLE made_after_the_restore (id integer)")
        with _as(pg_cluster, reader, name) as conn:
            assert conn.execute("SELECT count(*) FROM made_after_the_restore").fetchone() == (0,)
