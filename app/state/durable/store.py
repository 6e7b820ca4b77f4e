"""``DurableStore``: the operator's durable state (keys, client tokens, usage history, error log).

Every change to keys or tokens bumps one ``version`` row in the same transaction; each worker polls that row
(``StateSync``) and reloads when it moved, which is how a change made on one replica reaches all of them.
Nothing here runs on the request path.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.keys import key_id as make_key_id
from app.keys.key_policy import POLICY_FIELDS
from app.state.policy import Limits, TokenPolicy, hash_secret, seed_token_id

from .engine import locked, open_engine, run_migrations
from .schema import USAGE_COUNTERS, Tables, build_tables
from .secrets import CipherError, KeyCipher, placeholder_reason
from .usage import ErrorEntry, UsageKey

__all__ = ["AddResult", "DurableStore", "NotFound"]

LIMIT_FIELDS = ("rpm", "rpd", "tpm", "tpd", "concurrent")


class NotFound(KeyError):
    """No key or token with that id."""


@dataclass(frozen=True)
class AddResult:
    added: list[str]
    existing: list[str]
    refused: list[dict[str, Any]]   # {"index": i, "reason": ...}; never the key itself


def _policy(row: Any) -> TokenPolicy:
    return TokenPolicy(id=row.id, name=row.name, enabled=bool(row.enabled), expires_at=row.expires_at,
                       models=tuple(orjson.loads(row.models)),
                       limits=Limits(**{f: getattr(row, f) for f in LIMIT_FIELDS}))


class DurableStore:
    def __init__(self, url: str, *, prefix: str = "gw_", cipher: KeyCipher | None = None,
                 clock: Any = time.time) -> None:
        self.engine: AsyncEngine = open_engine(url)
        self.prefix = prefix
        self.t: Tables = build_tables(prefix)
        self.cipher = cipher or KeyCipher(None)
        self._clock = clock

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    async def start(self, seed_keys: Sequence[str] = (), seed_tokens: Sequence[str] = (),
                    projects: dict[str, str] | None = None) -> None:
        """Migrate, check the encryption setting against what is stored, re-seal, seed from settings."""
        async with locked(self.engine, self.prefix) as conn:
            await run_migrations(conn, self.t)
            await self._reseal(conn)
            changed = await self._seed_keys(conn, seed_keys, projects or {})
            changed |= await self._seed_tokens(conn, seed_tokens)
            if changed:
                await self._bump(conn)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- version --------------------------------------------------------------------------------------------

    async def version(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(self.t.meta.c.value)
                                           .where(self.t.meta.c.name == "version"))).scalar_one())

    async def _bump(self, conn: AsyncConnection) -> None:
        m = self.t.meta
        await conn.execute(update(m).where(m.c.name == "version").values(value=m.c.value + 1))

    # -- keys -----------------------------------------------------------------------------------------------

    async def _reseal(self, conn: AsyncConnection) -> None:
        k = self.t.keys
        rows = (await conn.execute(select(k.c.id, k.c.secret, k.c.enc).where(k.c.removed.is_(False)))).all()
        if any(r.enc for r in rows) and not self.cipher.enabled:
            raise CipherError("the store holds encrypted API keys but ENCRYPTION_KEY is not set; set it "
                              "(the key they were encrypted with) or the gateway cannot use them")
        for r in rows:
            if self.cipher.needs_reseal(r.secret, r.enc):
                secret, enc = self.cipher.seal(self.cipher.open(r.secret, r.enc))
                await conn.execute(update(k).where(k.c.id == r.id).values(secret=secret, enc=enc))
            else:
                self.cipher.open(r.secret, r.enc)  # fails now, at start, rather than at the first request
        # Proxy URLs may hold credentials: sealed, and re-sealed on a key change, like the keys.
        proxies = (await conn.execute(select(k.c.id, k.c.proxy, k.c.proxy_enc)
                                      .where(and_(k.c.removed.is_(False), k.c.proxy.is_not(None))))).all()
        for r in proxies:
            if self.cipher.needs_reseal(r.proxy, r.proxy_enc or 0):
                proxy, enc = self.cipher.seal(self.cipher.open(r.proxy, r.proxy_enc or 0))
                await conn.execute(update(k).where(k.c.id == r.id).values(proxy=proxy, proxy_enc=enc))

    async def _seed_keys(self, conn: AsyncConnection, keys: Sequence[str], projects: dict[str, str]) -> bool:
        k = self.t.keys
        known = {r.id for r in (await conn.execute(select(k.c.id))).all()}
        now = self._clock()
        changed = False
        for raw in dict.fromkeys(x.strip() for x in keys if x.strip()):
            kid = make_key_id(raw)
            if kid in known:
                continue  # present, or removed by an operator: a restart does not bring it back
            secret, enc = self.cipher.seal(raw)
            await conn.execute(k.insert().values(id=kid, secret=secret, enc=enc, project=projects.get(kid),
                                                 enabled=True, removed=False, source="settings",
                                                 created_at=now, updated_at=now))
            known.add(kid)
            changed = True
        return changed

    async def add_keys(self, keys: Iterable[str], project: str | None = None) -> AddResult:
        """Add many keys at once (deduplicated, placeholders refused); a removed key comes back."""
        k = self.t.keys
        added: list[str] = []
        existing: list[str] = []
        refused: list[dict[str, Any]] = []
        now = self._clock()
        async with self.engine.begin() as conn:
            rows = {r.id: r for r in (await conn.execute(select(k.c.id, k.c.removed))).all()}
            seen: set[str] = set()
            for index, raw in enumerate(keys):
                raw = raw.strip()
                reason = placeholder_reason(raw)
                if reason is not None:
                    refused.append({"index": index, "reason": reason})
                    continue
                kid = make_key_id(raw)
                if kid in seen:
                    continue
                seen.add(kid)
                row = rows.get(kid)
                secret, enc = self.cipher.seal(raw)
                if row is None:
                    await conn.execute(k.insert().values(id=kid, secret=secret, enc=enc, project=project,
                                                         enabled=True, removed=False, source="admin",
                                                         created_at=now, updated_at=now))
                    added.append(kid)
                elif row.removed:
                    await conn.execute(update(k).where(k.c.id == kid).values(
                        secret=secret, enc=enc, removed=False, enabled=True, project=project, updated_at=now))
                    added.append(kid)
                else:
                    existing.append(kid)
            if added:
                await self._bump(conn)
        return AddResult(added, existing, refused)

    async def _change_key(self, kid: str, **values: Any) -> None:
        k = self.t.keys
        async with self.engine.begin() as conn:
            result = await conn.execute(update(k).where(and_(k.c.id == kid, k.c.removed.is_(False)))
                                        .values(updated_at=self._clock(), **values))
            if result.rowcount == 0:
                raise NotFound(kid)
            await self._bump(conn)

    async def remove_key(self, kid: str) -> None:
        """Tombstone: the secret (and the proxy, which may hold credentials) is wiped and a key seeded from
        API_KEYS stays out after a restart."""
        await self._change_key(kid, removed=True, secret="", enc=0, proxy=None, proxy_enc=None, kind=None,
                               weight=None, tier=None, models=None, exclude_models=None)

    async def set_key_enabled(self, kid: str, enabled: bool) -> None:
        await self._change_key(kid, enabled=enabled)

    async def label_key(self, kid: str, project: str | None) -> None:
        await self._change_key(kid, project=project or None)

    async def route_key(self, kid: str, **values: str | None) -> None:
        """Set the key's ``proxy`` (a URL or "direct") and/or ``kind``; None = back to the settings."""
        change: dict[str, Any] = {}
        if "proxy" in values:
            proxy = values["proxy"]
            change["proxy"], change["proxy_enc"] = self.cipher.seal(proxy) if proxy else (None, None)
        if "kind" in values:
            change["kind"] = values["kind"] or None
        if change:
            await self._change_key(kid, **change)

    async def key_routes(self) -> dict[str, tuple[str | None, str | None]]:
        """key id -> (proxy, kind) as set in the store (None where the settings apply)."""
        k = self.t.keys
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(k.c.id, k.c.proxy, k.c.proxy_enc, k.c.kind)
                                       .where(k.c.removed.is_(False)))).all()
        return {r.id: (self.cipher.open(r.proxy, r.proxy_enc or 0) if r.proxy else None, r.kind)
                for r in rows if r.proxy or r.kind}

    async def set_key_policy(self, kid: str, **values: Any) -> None:
        """Set the key's ``weight``, ``tier``, ``models`` and/or ``exclude_models`` (checked by the caller);
        None = back to the settings."""
        change: dict[str, Any] = {}
        for name, value in values.items():
            if name not in POLICY_FIELDS:
                raise ValueError(f"not a key policy field: {name}")
            if name.endswith("models") and value is not None:
                value = orjson.dumps(list(value)).decode()
            change[name] = value
        if change:
            await self._change_key(kid, **change)

    async def key_policies(self) -> dict[str, dict[str, Any]]:
        """key id -> the policy fields set in the store (fields left to the settings are absent)."""
        k = self.t.keys
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(k.c.id, k.c.weight, k.c.tier, k.c.models, k.c.exclude_models)
                                       .where(k.c.removed.is_(False)))).all()
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            fields = {"weight": r.weight, "tier": r.tier,
                      "models": tuple(orjson.loads(r.models)) if r.models is not None else None,
                      "exclude_models": tuple(orjson.loads(r.exclude_models)) if r.exclude_models is not None
                      else None}
            fields = {name: value for name, value in fields.items() if value is not None}
            if fields:
                out[r.id] = fields
        return out

    async def list_keys(self) -> list[dict[str, Any]]:
        k = self.t.keys
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(k.c.id, k.c.project, k.c.enabled, k.c.source, k.c.enc,
                                              k.c.created_at, k.c.updated_at)
                                       .where(k.c.removed.is_(False)).order_by(k.c.created_at, k.c.id))).all()
        return [{"id": r.id, "project": r.project, "enabled": bool(r.enabled), "source": r.source,
                 "encrypted": bool(r.enc), "created_at": r.created_at, "updated_at": r.updated_at} for r in rows]

    async def pool_keys(self) -> list[tuple[str, str | None]]:
        """(raw key, project) of every enabled key, in the order they were added: the pool's key set."""
        k = self.t.keys
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(k.c.secret, k.c.enc, k.c.project)
                                       .where(and_(k.c.removed.is_(False), k.c.enabled.is_(True)))
                                       .order_by(k.c.created_at, k.c.id))).all()
        return [(self.cipher.open(r.secret, r.enc), r.project) for r in rows]

    # -- tokens ---------------------------------------------------------------------------------------------

    async def _seed_tokens(self, conn: AsyncConnection, tokens: Sequence[str]) -> bool:
        t = self.t.tokens
        known = {r.secret_hash for r in (await conn.execute(select(t.c.secret_hash))).all()}
        changed = False
        for secret in dict.fromkeys(x for x in tokens if x):
            digest = hash_secret(secret)
            if digest in known:
                continue
            await conn.execute(t.insert().values(id=seed_token_id(secret), name="ALLOWED_TOKENS",
                                                 secret_hash=digest, hint=secret[:4] + "…", enabled=True,
                                                 expires_at=None, models="[]", source="settings",
                                                 created_at=self._clock()))
            changed = True
        return changed

    async def create_token(self, name: str, *, expires_at: float | None = None, models: Sequence[str] = (),
                           limits: dict[str, int | None] | None = None) -> tuple[dict[str, Any], str]:
        """A new token and its secret; the secret is returned here once and stored only as a digest."""
        secret = "sk-gw-" + secrets.token_urlsafe(32)
        tid = "tok-" + secrets.token_hex(6)
        t = self.t.tokens
        async with self.engine.begin() as conn:
            await conn.execute(t.insert().values(
                id=tid, name=name, secret_hash=hash_secret(secret), hint=secret[:10] + "…", enabled=True,
                expires_at=expires_at, models=orjson.dumps(list(models)).decode(), source="admin",
                created_at=self._clock(), **{f: (limits or {}).get(f) for f in LIMIT_FIELDS}))
            await self._bump(conn)
        return await self.get_token(tid), secret

    async def update_token(self, tid: str, **values: Any) -> dict[str, Any]:
        """Change name, enabled, expires_at, models, or any limit (None = unlimited)."""
        if "models" in values:
            values["models"] = orjson.dumps(list(values["models"] or [])).decode()
        t = self.t.tokens
        async with self.engine.begin() as conn:
            if values:
                result = await conn.execute(update(t).where(t.c.id == tid).values(**values))
                if result.rowcount == 0:
                    raise NotFound(tid)
                await self._bump(conn)
        return await self.get_token(tid)

    async def delete_token(self, tid: str) -> None:
        t = self.t.tokens
        async with self.engine.begin() as conn:
            if (await conn.execute(delete(t).where(t.c.id == tid))).rowcount == 0:
                raise NotFound(tid)
            await self._bump(conn)

    @staticmethod
    def _token_view(r: Any) -> dict[str, Any]:
        return {"id": r.id, "name": r.name, "hint": r.hint, "enabled": bool(r.enabled),
                "expires_at": r.expires_at, "models": orjson.loads(r.models), "source": r.source,
                "limits": {f: getattr(r, f) for f in LIMIT_FIELDS}, "created_at": r.created_at}

    async def get_token(self, tid: str) -> dict[str, Any]:
        t = self.t.tokens
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t).where(t.c.id == tid))).first()
        if row is None:
            raise NotFound(tid)
        return self._token_view(row)

    async def list_tokens(self) -> list[dict[str, Any]]:
        t = self.t.tokens
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t).order_by(t.c.created_at, t.c.id))).all()
        return [self._token_view(r) for r in rows]

    async def token_policies(self) -> dict[str, TokenPolicy]:
        """secret digest -> policy, for the TokenRegistry."""
        t = self.t.tokens
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t))).all()
        return {r.secret_hash: _policy(r) for r in rows}

    # -- usage and the error log ----------------------------------------------------------------------------

    async def flush_usage(self, rows: dict[UsageKey, list[int]], errors: list[ErrorEntry]) -> None:
        """Add a batch of hourly counters (upsert with addition) and append error entries, in one transaction."""
        if not rows and not errors:
            return
        u = self.t.usage
        dialect = postgresql if self.backend == "postgresql" else sqlite
        async with self.engine.begin() as conn:
            if rows:
                ins = dialect.insert(u)
                stmt = ins.on_conflict_do_update(
                    index_elements=["hour", "kind", "subject", "model"],
                    set_={c: u.c[c] + ins.excluded[c] for c in USAGE_COUNTERS})
                await conn.execute(stmt, [{"hour": h, "kind": kind, "subject": s, "model": m,
                                           **dict(zip(USAGE_COUNTERS, v))} for (h, kind, s, m), v in rows.items()])
            if errors:
                await conn.execute(self.t.errors.insert(), [
                    {"at": e.at, "key_id": e.key_id, "model": e.model[:128], "class": e.kind,
                     "status": e.status, "reason": e.reason} for e in errors])

    async def usage(self, *, kind: str = "key", period: str = "hour", subject: str | None = None,
                    model: str | None = None, since: float | None = None,
                    until: float | None = None) -> list[dict[str, Any]]:
        """Counters per (period, subject, model), newest first; ``period`` is "hour" or "day" (UTC)."""
        u = self.t.usage
        bucket = u.c.hour if period == "hour" else (u.c.hour - u.c.hour % 86400)
        bucket = bucket.label("start")
        where = [u.c.kind == kind]
        if subject:
            where.append(u.c.subject == subject)
        if model:
            where.append(u.c.model == model)
        if since is not None:
            where.append(u.c.hour >= int(since // 3600) * 3600)
        if until is not None:
            where.append(u.c.hour < math.ceil(until / 3600) * 3600)
        stmt = (select(bucket, u.c.subject, u.c.model, *(func.sum(u.c[c]).label(c) for c in USAGE_COUNTERS))
                .where(*where).group_by(bucket, u.c.subject, u.c.model)
                .order_by(bucket.desc(), u.c.subject, u.c.model))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [{"start": int(r.start), kind: r.subject, "model": r.model,
                 **{c: int(getattr(r, c)) for c in USAGE_COUNTERS}} for r in rows]

    async def errors(self, *, key_id: str | None = None, model: str | None = None, kind: str | None = None,
                     before: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Error log entries, newest first; page with ``before`` = the last id seen."""
        e = self.t.errors
        where = []
        if key_id:
            where.append(e.c.key_id == key_id)
        if model:
            where.append(e.c.model == model)
        if kind:
            where.append(e.c["class"] == kind)
        if before is not None:
            where.append(e.c.id < before)
        stmt = select(e).where(*where).order_by(e.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [{"id": r.id, "at": r.at, "key_id": r.key_id, "model": r.model, "class": r._mapping["class"],
                 "status": r.status, "reason": r.reason} for r in rows]

    async def prune(self, usage_days: int, error_days: int) -> None:
        now = self._clock()
        async with self.engine.begin() as conn:
            await conn.execute(delete(self.t.usage).where(self.t.usage.c.hour < now - usage_days * 86400))
            await conn.execute(delete(self.t.errors).where(self.t.errors.c.at < now - error_days * 86400))
