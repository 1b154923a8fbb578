-- Tags (LiteLLM's LiteLLM_TagTable; see the PostgreSQL migration of the same name), with the
-- model list and model_info as JSON text and timestamps as UTC text.
CREATE TABLE IF NOT EXISTS "LiteLLM_TagTable" (
    "tag_name" TEXT NOT NULL PRIMARY KEY,
    "description" TEXT,
    "models" TEXT NOT NULL DEFAULT '[]',
    "model_info" TEXT,
    "spend" REAL NOT NULL DEFAULT 0.0,
    "budget_id" TEXT,
    "created_at" TEXT NOT NULL,
    "created_by" TEXT,
    "updated_at" TEXT NOT NULL
);
