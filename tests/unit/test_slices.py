"""Each part's frozen slice of the settings (app/slices.py): the right values, nothing more, secrets unprinted."""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest

from app import slices
from app.keys import PoolOptions
from app.routes.common import RouteConfig
from app.config import Settings

APP = pathlib.Path(__file__).resolve().parents[2] / "app"
#: The modules allowed to see Settings: loading it, assembling the app, and routing it into slices.
SETTINGS_READERS = {"config.py", "main.py", "__main__.py", "serving.py", "gateway.py", "slices.py"}


def custom() -> Settings:
    secret = "AI" + "za" + "x" * 35  # key-shaped, built at run time
    return Settings(_env_file=None, api_keys=[secret], max_failures=7, max_wait=1.5, max_concurrent_per_key=2,
                    base_url="http://upstream.test", time_out=9.0, upstream_connections=3,
                    interaction_log="", analytics_jsonl="a.jsonl", analytics_batch_size=5,
                    reconify_endpoint="http://collector.test", reconify_app_key="app-k", reconify_api_key="api-k",
                    session_ttl=60.0, session_max_history=4, valid_users=["ann"], user_rate_limit=3.0,
                    max_request_body=4096, body_timeout=2.0, stream_keepalive=5.0, model_search=["m-1"])


def test_each_slice_carries_its_settings() -> None:
    s = custom()
    assert slices.pool(s) == PoolOptions(max_failures=7, max_wait=1.5, max_concurrent=2)
    up = slices.upstream(s)
    assert (up.base_url, up.time_out, up.connections) == ("http://upstream.test", 9.0, 3)
    an = slices.analytics(s)
    assert (an.interaction_log, an.analytics_jsonl, an.batch_size, an.reconify_api_key) == (
        s.interaction_log, s.analytics_jsonl, 5, "api-k")  # the paths as Settings resolved them
    assert an.analytics_jsonl and an.analytics_jsonl.endswith("a.jsonl")
    se = slices.sessions(s)
    assert (se.ttl, se.max_history, se.valid_users, se.user_rate_limit, se.secrets) == (
        60.0, 4, ("ann",), 3.0, tuple(s.api_keys))
    assert slices.routes(s) == RouteConfig(max_request_body=4096, body_timeout=2.0, stream_keepalive=5.0,
                                           model_search=("m-1",))


def test_slices_are_frozen_and_keep_secrets_out_of_their_repr() -> None:
    s = custom()
    built = [slices.pool(s), slices.upstream(s), slices.analytics(s), slices.sessions(s), slices.routes(s)]
    for value in built:
        field = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)
    printed = " ".join(repr(v) for v in built)
    assert "app-k" not in printed and "api-k" not in printed and s.api_keys[0] not in printed


def test_no_part_imports_the_settings() -> None:
    readers = {str(p.relative_to(APP)) for p in APP.rglob("*.py")
               if re.search(r"^\s*from app\.config import|^\s*import app\.config", p.read_text(), re.M)}
    assert readers and readers <= SETTINGS_READERS, readers - SETTINGS_READERS
