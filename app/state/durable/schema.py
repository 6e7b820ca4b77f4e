"""The durable store's tables (SQLAlchemy Core, one definition for SQLite and PostgreSQL) and their migrations.

Every table name carries a prefix (``DATABASE_TABLE_PREFIX``, default ``gw_``) so that one database can host
several gateways, or parallel test runs, without collisions. ``MIGRATIONS`` is append-only: step *n* brings the
schema from version *n* to *n + 1*; the reached version is kept in the ``meta`` table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text,
                        inspect, select)
from sqlalchemy.engine import Connection

#: Counters of one usage row, in this order everywhere (aggregator, upserts, API answers).
USAGE_COUNTERS = ("requests", "successes", "rate_limited", "quota_exhausted", "key_invalid", "client_error",
                  "transient", "input_tokens", "output_tokens", "thinking_tokens", "cached_tokens",
                  "latency_ms_sum")


@dataclass(frozen=True)
class Tables:
    metadata: MetaData
    meta: Table
    keys: Table
    tokens: Table
    usage: Table
    errors: Table


def build_tables(prefix: str) -> Tables:
    md = MetaData()
    meta = Table(f"{prefix}meta", md, Column("name", String(64), primary_key=True),
                 Column("value", BigInteger, nullable=False))
    keys = Table(
        f"{prefix}keys", md,
        Column("id", String(64), primary_key=True),           # key_id(key): the only public name of a key
        Column("secret", Text, nullable=False),                # Fernet token, or the key itself when enc = 0
        Column("enc", Integer, nullable=False),                # 1 = encrypted with ENCRYPTION_KEY
        Column("project", String(200)),
        Column("enabled", Boolean, nullable=False),
        Column("removed", Boolean, nullable=False),            # tombstone: a removed API_KEYS entry stays out
        Column("source", String(16), nullable=False),          # "settings" or "admin"
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
        # v2: how the key reaches Google; NULL = as the settings say (KEY_PROXIES / KEY_KINDS / OUTBOUND_PROXY).
        Column("proxy", Text),                                  # "direct" or a proxy URL, sealed like the secret
        Column("proxy_enc", Integer),                           # 1 = proxy encrypted with ENCRYPTION_KEY
        Column("kind", String(16)),                             # "gemini" or "vertex"
        # v3: which requests the key takes; NULL = as the settings say (KEY_WEIGHTS / KEY_TIERS / KEY_MODELS /
        # KEY_EXCLUDE_MODELS, else weight 1, tier 1, every model).
        Column("weight", Integer),
        Column("tier", Integer),
        Column("models", Text),                                 # JSON list of glob patterns (allowlist)
        Column("exclude_models", Text))                         # JSON list of glob patterns (blocklist)
    tokens = Table(
        f"{prefix}tokens", md,
        Column("id", String(40), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("secret_hash", String(64), nullable=False, unique=True),   # sha256 hex of the secret
        Column("hint", String(32), nullable=False),                        # first characters, for recognition
        Column("enabled", Boolean, nullable=False),
        Column("expires_at", Float),
        Column("models", Text, nullable=False),                            # JSON list of glob patterns
        Column("rpm", Integer), Column("rpd", Integer), Column("tpm", BigInteger), Column("tpd", BigInteger),
        Column("concurrent", Integer),
        Column("source", String(16), nullable=False),
        Column("created_at", Float, nullable=False))
    usage = Table(
        f"{prefix}usage", md,
        Column("hour", BigInteger, primary_key=True),        # epoch seconds of the hour's start (UTC)
        Column("kind", String(8), primary_key=True),         # "key" or "token"
        Column("subject", String(64), primary_key=True),     # key id or token id
        Column("model", String(128), primary_key=True),
        *(Column(name, BigInteger, nullable=False, server_default="0") for name in USAGE_COUNTERS))
    errors = Table(
        f"{prefix}errors", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", Float, nullable=False),
        Column("key_id", String(64), nullable=False),
        Column("model", String(128), nullable=False),
        Column("class", String(32), nullable=False),
        Column("status", Integer, nullable=False),
        Column("reason", String(300), nullable=False),
        Index(f"{prefix}errors_at", "at"))
    return Tables(md, meta, keys, tokens, usage, errors)


def _v1(conn: Connection, t: Tables) -> None:
    t.metadata.create_all(conn, checkfirst=True)


def _v2(conn: Connection, t: Tables) -> None:
    """Per-key routes: proxy and kind columns on the keys table (a store made at v1 lacks them; one made by
    this version's ``_v1`` already has them)."""
    have = {c["name"] for c in inspect(conn).get_columns(t.keys.name)}
    for name in ("proxy", "proxy_enc", "kind"):
        if name not in have:
            column = t.keys.c[name]
            ddl = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {t.keys.name} ADD COLUMN {name} {ddl}')


def _v3(conn: Connection, t: Tables) -> None:
    """Per-key selection: weight, tier and model-list columns on the keys table (absent from a store made
    before v3; present already in one made by this version's ``_v1``)."""
    have = {c["name"] for c in inspect(conn).get_columns(t.keys.name)}
    for name in ("weight", "tier", "models", "exclude_models"):
        if name not in have:
            ddl = t.keys.c[name].type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {t.keys.name} ADD COLUMN {name} {ddl}')


#: Append-only list of schema steps; never edit a released step.
MIGRATIONS: list[Callable[[Connection, Tables], None]] = [_v1, _v2, _v3]


def migrate(conn: Connection, t: Tables) -> int:
    """Bring the schema to the latest version inside the caller's transaction (and lock); returns it."""
    t.meta.create(conn, checkfirst=True)
    row = conn.execute(select(t.meta.c.value).where(t.meta.c.name == "schema")).first()
    current = int(row[0]) if row else 0
    for step in MIGRATIONS[current:]:
        step(conn, t)
    latest = len(MIGRATIONS)
    if row is None:
        conn.execute(t.meta.insert().values(name="schema", value=latest))
        conn.execute(t.meta.insert().values(name="version", value=1))
    elif current != latest:
        conn.execute(t.meta.update().where(t.meta.c.name == "schema").values(value=latest))
    return latest
