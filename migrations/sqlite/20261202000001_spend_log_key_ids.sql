-- The embedded spend log names a row's key by an integer id instead of the key's 64-character
-- hash. The index that per-key reports read, ("api_key", "startTime"), held that hash in every
-- entry, and keeping it up to date was the most expensive part of writing a row.
--   * "LiteLLM_SpendLogKeys": each distinct "api_key" once ('' for calls made without a
--     virtual key), referenced by its integer id;
--   * "LiteLLM_SpendLogRows"."key_id" replaces "api_key", indexed with "startTime";
--   * the "LiteLLM_SpendLogs" view still shows "api_key"; a filter on it finds the key's id
--     through the unique index of "LiteLLM_SpendLogKeys", then the rows through
--     ("key_id", "startTime").

CREATE TABLE "LiteLLM_SpendLogKeys" (
    "id" INTEGER PRIMARY KEY,
    "api_key" TEXT NOT NULL UNIQUE
);

INSERT INTO "LiteLLM_SpendLogKeys" ("api_key")
SELECT DISTINCT "api_key" FROM "LiteLLM_SpendLogRows";

CREATE TABLE "LiteLLM_SpendLogRows_new" (
    "request_id" TEXT NOT NULL PRIMARY KEY,
    "deployment" INTEGER NOT NULL,
    "key_id" INTEGER NOT NULL,
    "spend" REAL NOT NULL DEFAULT 0.0,
    "total_tokens" INTEGER NOT NULL DEFAULT 0,
    "prompt_tokens" INTEGER NOT NULL DEFAULT 0,
    "completion_tokens" INTEGER NOT NULL DEFAULT 0,
    "startTime" TEXT NOT NULL,
    "endTime" TEXT NOT NULL,
    "request_duration_ms" INTEGER,
    "completionStartTime" TEXT,
    "user" TEXT,
    "metadata" TEXT,
    "cache_hit" TEXT,
    "cache_key" TEXT,
    "request_tags" TEXT,
    "team_id" TEXT,
    "organization_id" TEXT,
    "end_user" TEXT,
    "requester_ip_address" TEXT,
    "session_id" TEXT,
    "status" TEXT
);

INSERT INTO "LiteLLM_SpendLogRows_new"
SELECT r."request_id", r."deployment", k."id", r."spend", r."total_tokens", r."prompt_tokens",
       r."completion_tokens", r."startTime", r."endTime", r."request_duration_ms",
       r."completionStartTime", r."user", r."metadata", r."cache_hit", r."cache_key",
       r."request_tags", r."team_id", r."organization_id", r."end_user",
       r."requester_ip_address", r."session_id", r."status"
FROM "LiteLLM_SpendLogRows" r
JOIN "LiteLLM_SpendLogKeys" k ON k."api_key" = r."api_key";

DROP VIEW "LiteLLM_SpendLogs";
DROP TABLE "LiteLLM_SpendLogRows";
ALTER TABLE "LiteLLM_SpendLogRows_new" RENAME TO "LiteLLM_SpendLogRows";

CREATE INDEX "LiteLLM_SpendLogRows_startTime_idx" ON "LiteLLM_SpendLogRows"("startTime");
CREATE INDEX "LiteLLM_SpendLogRows_key_startTime_idx" ON "LiteLLM_SpendLogRows"("key_id", "startTime");

CREATE VIEW "LiteLLM_SpendLogs" AS
SELECT r."request_id", d."call_type", k."api_key", r."spend", r."total_tokens", r."prompt_tokens",
       r."completion_tokens", r."startTime", r."endTime", r."request_duration_ms",
       r."completionStartTime", d."model", d."model_id", d."model_group",
       d."custom_llm_provider", d."api_base",
       COALESCE(r."user", '') AS "user",
       COALESCE(r."metadata", '{}') AS "metadata",
       COALESCE(r."cache_hit", 'False') AS "cache_hit",
       COALESCE(r."cache_key", '') AS "cache_key",
       COALESCE(r."request_tags", '[]') AS "request_tags",
       r."team_id", r."organization_id", r."end_user", r."requester_ip_address", r."session_id",
       COALESCE(r."status", 'success') AS "status"
FROM "LiteLLM_SpendLogRows" r
JOIN "LiteLLM_SpendLogDeployments" d ON d."id" = r."deployment"
JOIN "LiteLLM_SpendLogKeys" k ON k."id" = r."key_id";
