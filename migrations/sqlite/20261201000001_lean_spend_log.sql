-- The embedded store's spend log in a leaner layout. Writing a row cost more CPU than serving
-- the call it records, most of it SQLite copying and storing fifteen text values per row. The
-- embedded file is the gateway's own, so only the names LiteLLM uses need to stay:
-- "LiteLLM_SpendLogs" becomes a view with LiteLLM's columns over
--   * "LiteLLM_SpendLogDeployments": each distinct (call type, model, deployment, provider,
--     api_base) once, referenced by its integer id;
--   * "LiteLLM_SpendLogRows": one row per call, where NULL stands for the usual value of
--     "user" (''), "metadata" ('{}'), "cache_hit" ('False'), "cache_key" (''), "request_tags"
--     ('[]') and "status" ('success'), so those are neither bound nor stored per call.
-- "startTime", "endTime", "api_key" and "request_id" keep their form and indexes, so the view's
-- filters on them still use the indexes.

CREATE TABLE "LiteLLM_SpendLogDeployments" (
    "id" INTEGER PRIMARY KEY,
    "call_type" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "model_id" TEXT NOT NULL,
    "model_group" TEXT NOT NULL,
    "custom_llm_provider" TEXT NOT NULL,
    "api_base" TEXT NOT NULL,
    UNIQUE ("call_type", "model", "model_id", "model_group", "custom_llm_provider", "api_base")
);

CREATE TABLE "LiteLLM_SpendLogRows" (
    "request_id" TEXT NOT NULL PRIMARY KEY,
    "deployment" INTEGER NOT NULL,
    "api_key" TEXT NOT NULL DEFAULT '',
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

INSERT INTO "LiteLLM_SpendLogDeployments"
    ("call_type", "model", "model_id", "model_group", "custom_llm_provider", "api_base")
SELECT DISTINCT "call_type", "model", COALESCE("model_id", ''), COALESCE("model_group", ''),
       COALESCE("custom_llm_provider", ''), COALESCE("api_base", '')
FROM "LiteLLM_SpendLogs";

INSERT INTO "LiteLLM_SpendLogRows"
SELECT l."request_id", d."id", l."api_key", l."spend", l."total_tokens", l."prompt_tokens",
       l."completion_tokens", l."startTime", l."endTime", l."request_duration_ms",
       l."completionStartTime", NULLIF(l."user", ''), NULLIF(l."metadata", '{}'),
       NULLIF(l."cache_hit", 'False'), NULLIF(l."cache_key", ''), NULLIF(l."request_tags", '[]'),
       l."team_id", l."organization_id", l."end_user", l."requester_ip_address", l."session_id",
       NULLIF(l."status", 'success')
FROM "LiteLLM_SpendLogs" l
JOIN "LiteLLM_SpendLogDeployments" d
  ON d."call_type" = l."call_type" AND d."model" = l."model"
 AND d."model_id" = COALESCE(l."model_id", '') AND d."model_group" = COALESCE(l."model_group", '')
 AND d."custom_llm_provider" = COALESCE(l."custom_llm_provider", '')
 AND d."api_base" = COALESCE(l."api_base", '');

DROP TABLE "LiteLLM_SpendLogs";

CREATE INDEX "LiteLLM_SpendLogRows_startTime_idx" ON "LiteLLM_SpendLogRows"("startTime");
CREATE INDEX "LiteLLM_SpendLogRows_api_key_startTime_idx" ON "LiteLLM_SpendLogRows"("api_key", "startTime");

CREATE VIEW "LiteLLM_SpendLogs" AS
SELECT r."request_id", d."call_type", r."api_key", r."spend", r."total_tokens", r."prompt_tokens",
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
JOIN "LiteLLM_SpendLogDeployments" d ON d."id" = r."deployment";
