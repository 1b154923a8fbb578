"""Two gateway processes sharing one store and one Redis: a key's RPM limit holds across both,
as it would behind a load balancer."""

import os

import openai
import pytest

from conftest import Gateway, write_config
from test_virtual_keys import HI, admin, sdk


@pytest.fixture()
def two_replicas(mock_upstream, tmp_path):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("TEST_REDIS_URL not set (the test command sets it)")
    general = {"proxy_batch_write_at": 1}
    db = os.environ.get("TEST_DATABASE_URL")
    if db:
        general["database_url"] = db
    cfg = tmp_path / "config.yaml"
    write_config(str(cfg), mock_upstream.server_address[1], {"general_settings": general})
    # Without Postgres both processes open the same SQLite file (the working directory's).
    env = {"REDIS_URL": redis_url, "LITELLM_SQLITE_PATH": str(tmp_path / "shared.db")}
    gws = [Gateway(str(cfg), env=env, workdir=str(tmp_path)) for _ in range(2)]
    yield gws
    for g in gws:
        g.stop()


def test_rpm_limit_is_shared_by_two_processes(two_replicas):
    a, b = two_replicas
    key = admin(a, "/key/generate", {"rpm_limit": 4})["key"]
    ok, limited = 0, 0
    for i in range(8):
        client = sdk(a if i % 2 == 0 else b, key)
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            ok += 1
        except openai.RateLimitError:
            limited += 1
    assert (ok, limited) == (4, 4), "four calls per minute in total, across both replicas"
