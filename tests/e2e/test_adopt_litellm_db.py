"""Drop-in on a database a LiteLLM proxy already used.

The schema is built the way LiteLLM 1.106.2 builds it: every Prisma migration shipped in
litellm-proxy-extras 0.4.108, applied in directory order and recorded in `_prisma_migrations`
(optionally followed by the package's own post-deploy spend-log index build). Rows are seeded
with LiteLLM's columns and types: keys (sha256 of the raw key), a user, a team, a team
membership, a budget, an organization, an end user and spend logs. The gateway must start on
it without changing the schema (its own `_sqlx_migrations` aside) and without waiting on
writers, serve the existing keys with their limits, report the existing figures, add to them,
and create keys, users and teams that LiteLLM's constraints accept.
"""

import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from importlib import resources

import openai
import psycopg
import pytest

from conftest import Gateway, write_config
from test_virtual_keys import HI, admin, sdk

KEY_A = "sk-adopt-existing-key-a-0001"
KEY_B = "sk-adopt-spent-key-b-0002"
HASH_A = hashlib.sha256(KEY_A.encode()).hexdigest()
HASH_B = hashlib.sha256(KEY_B.encode()).hexdigest()

PRISMA_MIGRATIONS = """
CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)"""

# As LiteLLM's proxy writes them (Prisma client; timestamps are UTC without zone).
SEED = [
    """INSERT INTO "LiteLLM_BudgetTable" ("budget_id", "max_budget", "budget_duration", "budget_reset_at",
           "created_by", "updated_by")
       VALUES ('budget-adopt', 40.0, '30d', now() + interval '20 days', 'default_user_id', 'default_user_id')""",
    """INSERT INTO "LiteLLM_OrganizationTable" ("organization_id", "organization_alias", "budget_id", "models",
           "created_by", "updated_by")
       VALUES ('org-adopt', 'Adopted Org', 'budget-adopt', ARRAY[]::text[], 'default_user_id', 'default_user_id')""",
    """INSERT INTO "LiteLLM_UserTable" ("user_id", "user_email", "user_role", "max_budget", "spend", "teams",
           "models", "metadata", "organization_id")
       VALUES ('user-adopt', 'adopt@example.com', 'internal_user', 100.0, 12.5, ARRAY['team-adopt'],
               ARRAY[]::text[], '{"seeded": true}', 'org-adopt')""",
    """INSERT INTO "LiteLLM_UserTable" ("user_id", "user_email", "user_role", "spend", "teams", "models")
       VALUES ('user-leaving', 'leaving@example.com', 'internal_user', 0.5, ARRAY[]::text[], ARRAY[]::text[])""",
    """INSERT INTO "LiteLLM_OrganizationMembership" ("user_id", "organization_id", "user_role")
       VALUES ('user-leaving', 'org-adopt', 'internal_user')""",
    """INSERT INTO "LiteLLM_TeamTable" ("team_id", "team_alias", "organization_id", "admins", "members",
           "members_with_roles", "metadata", "max_budget", "spend", "models", "model_spend")
       VALUES ('team-adopt', 'adopted-team', 'org-adopt', ARRAY[]::text[], ARRAY[]::text[],
               '[{"role": "admin", "user_id": "user-adopt", "user_email": "adopt@example.com"}]',
               '{}', 200.0, 30.0, ARRAY['gpt-4o-mini'], '{"gpt-4o-mini": 30.0}')""",
    """INSERT INTO "LiteLLM_TeamMembership" ("user_id", "team_id", "spend", "total_spend")
       VALUES ('user-adopt', 'team-adopt', 3.0, 3.0)""",
    f"""INSERT INTO "LiteLLM_VerificationToken" ("token", "key_name", "key_alias", "spend", "total_spend",
           "models", "user_id", "team_id", "max_budget", "metadata", "budget_duration", "budget_reset_at",
           "model_spend", "created_by", "updated_by")
       VALUES ('{HASH_A}', 'sk-...0001', 'adopted-key', 1.25, 4.75, ARRAY['gpt-4o-mini'], 'user-adopt',
               'team-adopt', 10.0, '{{"owner": "ops"}}', '30d', now() + interval '20 days',
               '{{"gpt-4o-mini": 1.25}}', 'user-adopt', 'user-adopt')""",
    f"""INSERT INTO "LiteLLM_VerificationToken" ("token", "key_name", "spend", "models", "max_budget")
       VALUES ('{HASH_B}', 'sk-...0002', 5.0, ARRAY[]::text[], 5.0)""",
    """INSERT INTO "LiteLLM_EndUserTable" ("user_id", "alias", "spend", "budget_id")
       VALUES ('customer-adopt', 'Adopted Customer', 2.0, 'budget-adopt')""",
] + [
    f"""INSERT INTO "LiteLLM_SpendLogs" ("request_id", "call_type", "api_key", "spend", "total_tokens",
           "prompt_tokens", "completion_tokens", "startTime", "endTime", "completionStartTime", "model",
           "model_id", "model_group", "custom_llm_provider", "api_base", "user", "metadata", "cache_hit",
           "cache_key", "request_tags", "team_id", "end_user", "requester_ip_address", "messages", "response",
           "proxy_server_request", "session_id", "status", "organization_id", "request_duration_ms",
           "litellm_call_id")
       VALUES ('chatcmpl-seeded-{i}', 'acompletion', '{HASH_A}', {spend}, 30, 20, 10,
               '2026-11-0{i} 10:00:00', '2026-11-0{i} 10:00:01', '2026-11-0{i} 10:00:00.5', 'gpt-4o-mini',
               'model-1', 'gpt-4o-mini', 'openai', 'https://api.openai.com/v1', 'user-adopt',
               '{{"user_api_key": "{HASH_A}", "user_api_key_alias": "adopted-key"}}', 'False', 'Cache OFF',
               '["seeded"]', 'team-adopt', 'customer-adopt', '10.0.0.1', '{{}}', '{{}}', '{{}}',
               'session-{i}', 'success', 'org-adopt', 1000, 'call-{i}')"""
    for i, spend in [(1, 0.5), (2, 0.75)]
]

# Tables, columns, indexes, constraints, triggers, views and sequences of the database's schema.
CATALOG = {
    "relations": """SELECT c.relname, c.relkind::text FROM pg_class c
                     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r','p','v','m','S')
                     ORDER BY 1""",
    "columns": """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                         pg_get_expr(d.adbin, d.adrelid)
                    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                   WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r','p')
                     AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
                   WHERE schemaname = current_schema() ORDER BY 1, 2""",
    "invalid_indexes": """SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                           WHERE c.relnamespace = current_schema()::regnamespace AND NOT i.indisvalid""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                       WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2""",
    "triggers": """SELECT tgrelid::regclass::text, tgname FROM pg_trigger
                    WHERE NOT tgisinternal ORDER BY 1, 2""",
}
OUR_BOOKKEEPING = "_sqlx_migrations"


def db_url(base, name, schema=None):
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.urlencode({"schema": schema}) if schema else parts.query
    return urllib.parse.urlunsplit(parts._replace(path="/" + name, query=query))


def connect(url, schema=None):
    parts = urllib.parse.urlsplit(url)
    conn = psycopg.connect(urllib.parse.urlunsplit(parts._replace(query="")), autocommit=True)
    if schema:
        conn.execute(f'SET search_path TO "{schema}"')
    return conn


def apply_litellm_migrations(conn):
    """What `prisma migrate deploy` does: each migration.sql in directory order, as one script
    (a single-statement migration such as CREATE INDEX CONCURRENTLY outside a transaction),
    recorded in `_prisma_migrations` with the sha256 of the file."""
    conn.execute(PRISMA_MIGRATIONS)
    root = resources.files("litellm_proxy_extras") / "migrations"
    names = sorted(d.name for d in root.iterdir() if (d / "migration.sql").is_file())
    assert len(names) > 100, f"expected LiteLLM's migration history, found {len(names)} migrations"
    for name in names:
        script = (root / name / "migration.sql").read_bytes()
        started = time.time()
        conn.execute(script.decode())
        conn.execute(
            """INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name",
                   "started_at", "applied_steps_count") VALUES (%s, %s, now(), %s, to_timestamp(%s), 1)""",
            (str(uuid.uuid4()), hashlib.sha256(script).hexdigest(), name, started),
        )
    return names


def catalog(conn):
    return {name: conn.execute(q).fetchall() for name, q in CATALOG.items()}


def catalog_diff(before, after):
    diff = {}
    for name in CATALOG:
        added = sorted(set(after[name]) - set(before[name]), key=str)
        removed = sorted(set(before[name]) - set(after[name]), key=str)
        if added or removed:
            diff[name] = {"added": added, "removed": removed}
    return diff


def only_our_bookkeeping(diff):
    """True when everything added belongs to `_sqlx_migrations` and nothing was removed."""
    for part in diff.values():
        if part["removed"]:
            return False
        for row in part["added"]:
            if OUR_BOOKKEEPING not in row[0]:
                return False
    return True


@pytest.fixture()
def litellm_db(request):
    """A fresh database migrated by LiteLLM's migrations and seeded. Parametrized (indirectly)
    with the schema name to use and whether to run LiteLLM's post-deploy index build."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL not set (the test command sets it)")
    schema, build_indexes = getattr(request, "param", (None, False))
    name = f"adopt_{uuid.uuid4().hex[:12]}"
    with connect(base) as root:
        root.execute(f'CREATE DATABASE "{name}"')
    url = db_url(base, name, schema)
    try:
        with connect(url) as conn:
            if schema:
                conn.execute(f'CREATE SCHEMA "{schema}"')
                conn.execute(f'SET search_path TO "{schema}"')
            migrations = apply_litellm_migrations(conn)
            if build_indexes:
                from litellm_proxy_extras.request_log_indexes import ensure_request_log_indexes

                plain = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(query=""))
                assert ensure_request_log_indexes(plain, schema or "public")
            for stmt in SEED:
                conn.execute(stmt)
        yield url, schema, migrations
    finally:
        with connect(base) as root:
            root.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def start(mock_upstream, tmp_path):
    started = []

    def run(url):
        cfg = tmp_path / "config.yaml"
        write_config(str(cfg), mock_upstream.server_address[1], {"general_settings": {"proxy_batch_write_at": 1}})
        gw = Gateway(str(cfg), env={"DATABASE_URL": url}, workdir=str(tmp_path))
        started.append(gw)
        return gw

    yield run
    for gw in started:
        gw.stop()


def admin_error(gw, path, body):
    with pytest.raises(urllib.error.HTTPError) as info:
        admin(gw, path, body)
    return info.value.code, json.loads(info.value.read())


def wait_for(conn, query, params, check, timeout=15):
    deadline = time.time() + timeout
    while True:
        row = conn.execute(query, params).fetchone()
        if check(row) or time.time() > deadline:
            return row
        time.sleep(0.2)


def test_gateway_adopts_a_litellm_database(litellm_db, start):
    url, schema, migrations = litellm_db
    conn = connect(url, schema)
    before = catalog(conn)
    prisma_rows = conn.execute('SELECT count(*) FROM "_prisma_migrations"').fetchone()[0]
    assert prisma_rows == len(migrations)

    # Writers with open transactions on LiteLLM's busiest tables: start-up must not wait on them
    # (a CREATE INDEX or ALTER TABLE on one of them would).
    writer = connect(url, schema)
    writer.autocommit = False
    writer.execute(
        """INSERT INTO "LiteLLM_SpendLogs" ("request_id", "call_type", "startTime", "endTime")
           VALUES ('in-flight', 'acompletion', now(), now())"""
    )
    writer.execute('UPDATE "LiteLLM_VerificationToken" SET "spend" = "spend" WHERE "token" = %s', (HASH_B,))
    writer.execute('UPDATE "LiteLLM_TeamTable" SET "spend" = "spend" WHERE "team_id" = %s', ("team-adopt",))
    writer.execute('UPDATE "LiteLLM_UserTable" SET "spend" = "spend" WHERE "user_id" = %s', ("user-leaving",))
    try:
        gw = start(url)
    finally:
        writer.rollback()
        writer.close()

    after = catalog(conn)
    diff = catalog_diff(before, after)
    assert only_our_bookkeeping(diff), json.dumps(diff, indent=1, default=str)
    assert any(OUR_BOOKKEEPING in r[0] for r in diff.get("relations", {}).get("added", [])), diff
    assert conn.execute('SELECT count(*) FROM "_prisma_migrations"').fetchone()[0] == prisma_rows

    # The existing figures, as the management API reports them.
    key = admin(gw, f"/key/info?key={KEY_A}")["info"]
    assert (key["spend"], key["max_budget"], key["models"]) == (1.25, 10.0, ["gpt-4o-mini"])
    assert (key["key_alias"], key["user_id"], key["team_id"]) == ("adopted-key", "user-adopt", "team-adopt")
    assert key["metadata"] == {"owner": "ops"}
    user = admin(gw, "/user/info?user_id=user-adopt")
    assert (user["user_info"]["spend"], user["user_info"]["max_budget"]) == (12.5, 100.0)
    assert user["user_info"]["teams"] == ["team-adopt"]
    assert HASH_A in [k["token"] for k in user["keys"]]
    team = admin(gw, "/team/info?team_id=team-adopt")["team_info"]
    assert (team["spend"], team["max_budget"], team["organization_id"]) == (30.0, 200.0, "org-adopt")
    assert [m["user_id"] for m in team["members_with_roles"]] == ["user-adopt"]
    logs = admin(gw, f"/spend/logs?api_key={HASH_A}")
    assert sorted((r["request_id"], r["spend"]) for r in logs) == [("chatcmpl-seeded-1", 0.5), ("chatcmpl-seeded-2", 0.75)]
    assert {r["request_tags"] == ["seeded"] and r["team_id"] == "team-adopt" for r in logs} == {True}

    # The existing keys work with the SDK, within their models and budget.
    client = sdk(gw, KEY_A)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert reply.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="offline", messages=HI)
    with pytest.raises(openai.BadRequestError) as info:
        sdk(gw, KEY_B).chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert info.value.response.json()["error"]["type"] == "budget_exceeded"
    with pytest.raises(openai.AuthenticationError):
        sdk(gw, "sk-adopt-never-issued").chat.completions.create(model="gpt-4o-mini", messages=HI)

    # The call's cost lands on the existing rows, and its log row in LiteLLM's table.
    row = wait_for(
        conn, 'SELECT "spend", "total_spend", "last_active" FROM "LiteLLM_VerificationToken" WHERE "token" = %s',
        (HASH_A,), lambda r: r[0] > 1.25,
    )
    cost = row[0] - 1.25
    assert cost > 0, "the call's spend was not written"
    assert row[1] == pytest.approx(4.75 + cost) and row[2] is not None
    assert conn.execute('SELECT "spend" FROM "LiteLLM_UserTable" WHERE "user_id" = %s', ("user-adopt",)).fetchone()[0] == pytest.approx(12.5 + cost)
    assert conn.execute('SELECT "spend" FROM "LiteLLM_TeamTable" WHERE "team_id" = %s', ("team-adopt",)).fetchone()[0] == pytest.approx(30.0 + cost)
    member = conn.execute(
        'SELECT "spend", "total_spend" FROM "LiteLLM_TeamMembership" WHERE "user_id" = %s AND "team_id" = %s',
        ("user-adopt", "team-adopt"),
    ).fetchone()
    assert member == (pytest.approx(3.0 + cost), pytest.approx(3.0 + cost))
    new_log = conn.execute(
        """SELECT "request_id", "spend", "model", "call_type", "team_id", "created_at", "updated_at", "metadata"
             FROM "LiteLLM_SpendLogs" WHERE "api_key" = %s AND "request_id" NOT LIKE 'chatcmpl-seeded-%%'""",
        (HASH_A,),
    ).fetchall()
    assert len(new_log) == 1, new_log
    assert new_log[0][1] == pytest.approx(cost) and new_log[0][2] == "gpt-4o-mini" and new_log[0][4] == "team-adopt"
    assert new_log[0][5] is not None and new_log[0][6] is not None and isinstance(new_log[0][7], dict)
    assert admin(gw, f"/key/info?key={KEY_A}")["info"]["spend"] == pytest.approx(1.25 + cost)
    assert len(admin(gw, f"/spend/logs?api_key={HASH_A}")) == 3

    # New keys, users and teams on LiteLLM's schema (text[] lists, jsonb objects, NOT NULL
    # columns left to their defaults, foreign keys).
    made = admin(gw, "/key/generate", {"models": ["gpt-4o-mini"], "max_budget": 3.5, "user_id": "user-adopt",
                                       "team_id": "team-adopt", "metadata": {"via": "gateway"}, "key_alias": "gw-key"})
    stored = conn.execute(
        """SELECT "models", "metadata", "max_budget", "total_spend", "budget_fallbacks", "soft_budget_cooldown"
             FROM "LiteLLM_VerificationToken" WHERE "token" = %s""",
        (made["token_id"],),
    ).fetchone()
    assert stored == (["gpt-4o-mini"], {"via": "gateway"}, 3.5, 0.0, {}, False)
    assert sdk(gw, made["key"]).chat.completions.create(model="gpt-4o-mini", messages=HI).choices

    new_user = admin(gw, "/user/new", {"user_email": "new@example.com", "max_budget": 7.0, "models": ["gpt-4o-mini"]})
    stored = conn.execute(
        'SELECT "user_email", "max_budget", "teams", "metadata", "spend" FROM "LiteLLM_UserTable" WHERE "user_id" = %s',
        (new_user["user_id"],),
    ).fetchone()
    assert stored == ("new@example.com", 7.0, [], {}, 0.0)
    assert sdk(gw, new_user["key"]).chat.completions.create(model="gpt-4o-mini", messages=HI).choices

    new_team = admin(gw, "/team/new", {"team_alias": "gw-team", "organization_id": "org-adopt", "models": ["gpt-4o-mini"],
                                       "members_with_roles": [{"role": "user", "user_id": "user-adopt"}]})
    stored = conn.execute(
        """SELECT "team_alias", "organization_id", "models", "members_with_roles", "blocked",
                  "allow_team_guardrail_config", "created_at" IS NOT NULL
             FROM "LiteLLM_TeamTable" WHERE "team_id" = %s""",
        (new_team["team_id"],),
    ).fetchone()
    assert stored[:3] == ("gw-team", "org-adopt", ["gpt-4o-mini"])
    assert [m["user_id"] for m in stored[3]] == ["user-adopt"] and stored[4:] == (False, False, True)

    # LiteLLM's foreign key from teams to organizations: an unknown organization is refused
    # (400 on /team/new, 404 on /team/update, as LiteLLM answers).
    status, body = admin_error(gw, "/team/new", {"team_alias": "orphan", "organization_id": "org-missing"})
    assert status == 400 and body["error"]["param"] == "organization_id", body
    status, body = admin_error(gw, "/team/update", {"team_id": "team-adopt", "organization_id": "org-missing"})
    assert status == 404 and body["error"]["param"] == "organization_id", body

    # Deleting a user also removes their organization membership (LiteLLM's foreign key would
    # refuse to delete the user otherwise).
    assert admin(gw, "/user/delete", {"user_ids": ["user-leaving"]})
    assert conn.execute(
        'SELECT count(*) FROM "LiteLLM_OrganizationMembership" WHERE "user_id" = %s', ("user-leaving",)
    ).fetchone()[0] == 0

    # Rows the gateway does not manage are left as LiteLLM wrote them.
    assert conn.execute('SELECT "spend", "budget_id" FROM "LiteLLM_EndUserTable"').fetchall() == [(2.0, "budget-adopt")]
    assert conn.execute('SELECT "max_budget", "created_by" FROM "LiteLLM_BudgetTable"').fetchall() == [(40.0, "default_user_id")]

    # Tags on LiteLLM's table (text[] models, jsonb model_info, its foreign key to budgets): the
    # tag's budget row is written first, a spent tag budget refuses calls carrying the tag, and
    # the spend lands on the tag's row.
    tag = admin(gw, "/tag/new", {"name": "adopt-tag", "description": "via gateway", "max_budget": 1e-9})
    assert tag["message"] == "Tag adopt-tag created successfully"
    stored = conn.execute(
        """SELECT t."models", t."model_info", t."spend", b."max_budget", t."created_by"
             FROM "LiteLLM_TagTable" t JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = t."budget_id"
            WHERE t."tag_name" = %s""",
        ("adopt-tag",),
    ).fetchone()
    assert stored == ([], {}, 0.0, 1e-9, "default_user_id")
    tagged = sdk(gw, made["key"])
    assert tagged.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_body={"tags": ["adopt-tag"]}).choices
    with pytest.raises(openai.BadRequestError) as info:
        tagged.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_body={"tags": ["adopt-tag"]})
    assert info.value.response.json()["error"]["message"].startswith("Budget has been exceeded! Tag=adopt-tag")
    row = wait_for(conn, 'SELECT "spend" FROM "LiteLLM_TagTable" WHERE "tag_name" = %s', ("adopt-tag",), lambda r: r[0] > 0)
    assert row[0] > 0, "the tag's spend was not written"
    assert admin(gw, "/tag/delete", {"name": "adopt-tag"})["message"] == "Tag adopt-tag deleted successfully"

    # A second start finds the database adopted and changes nothing either.
    gw.stop()
    gw = start(url)
    assert admin(gw, f"/key/info?key={KEY_A}")["info"]["spend"] == pytest.approx(1.25 + cost)
    assert catalog_diff(after, catalog(conn)) == {}
    conn.close()


@pytest.mark.parametrize("litellm_db", [("litellm", True)], indirect=True, ids=["own-schema+index-build"])
def test_adopts_a_litellm_schema_after_its_index_build(litellm_db, start):
    """LiteLLM in a schema of its own (Prisma's `?schema=` in the URL), after the package's
    post-deploy index build added its spend-log indexes."""
    url, schema, _ = litellm_db
    conn = connect(url, schema)
    indexes = {r[1] for r in conn.execute(CATALOG["indexes"]).fetchall()}
    assert {"LiteLLM_SpendLogs_api_key_startTime_idx", "LiteLLM_SpendLogs_litellm_call_id_idx"} <= indexes
    before = catalog(conn)
    gw = start(url)
    diff = catalog_diff(before, catalog(conn))
    assert only_our_bookkeeping(diff) and diff, json.dumps(diff, indent=1, default=str)
    with connect(db_url(os.environ["TEST_DATABASE_URL"], conn.info.dbname)) as public:
        assert public.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0

    assert admin(gw, f"/key/info?key={KEY_A}")["info"]["spend"] == 1.25
    sdk(gw, KEY_A).chat.completions.create(model="gpt-4o-mini", messages=HI)
    row = wait_for(conn, 'SELECT "spend" FROM "LiteLLM_VerificationToken" WHERE "token" = %s', (HASH_A,),
                   lambda r: r[0] > 1.25)
    assert row[0] > 1.25
    conn.close()


def test_adopts_a_schema_pushed_without_migration_history(litellm_db, start):
    """`litellm --use_prisma_db_push` builds the same tables without `_prisma_migrations`: the
    tables alone mark the database as LiteLLM's, and our record keeps saying so afterwards."""
    url, schema, _ = litellm_db
    conn = connect(url, schema)
    conn.execute('DROP TABLE "_prisma_migrations"')
    before = catalog(conn)
    gw = start(url)
    after = catalog(conn)
    diff = catalog_diff(before, after)
    assert only_our_bookkeeping(diff) and diff, json.dumps(diff, indent=1, default=str)
    recorded = conn.execute('SELECT "description" FROM "_sqlx_migrations" ORDER BY "version"').fetchall()
    assert recorded and all("(recorded: the schema is LiteLLM's)" in d for (d,) in recorded), recorded
    assert admin(gw, f"/key/info?key={KEY_A}")["info"]["spend"] == 1.25
    gw.stop()
    gw = start(url)
    assert catalog_diff(after, catalog(conn)) == {}
    assert sdk(gw, KEY_A).chat.completions.create(model="gpt-4o-mini", messages=HI).choices
    conn.close()


def test_refuses_a_litellm_schema_missing_what_it_uses(litellm_db, start):
    """A LiteLLM schema from before a column the gateway writes: start-up stops and names it."""
    url, schema, _ = litellm_db
    with connect(url, schema) as conn:
        conn.execute('ALTER TABLE "LiteLLM_VerificationToken" DROP COLUMN "total_spend"')
        before = catalog(conn)
        with pytest.raises(RuntimeError) as info:
            start(url)
        assert '"LiteLLM_VerificationToken"."total_spend"' in str(info.value)
        assert catalog_diff(before, catalog(conn)) == {}
