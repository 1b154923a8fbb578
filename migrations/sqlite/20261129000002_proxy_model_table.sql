-- Models added through /model/new when store_model_in_db is on (LiteLLM's LiteLLM_ProxyModelTable).
-- JSON columns are TEXT; timestamps are 'YYYY-MM-DD HH:MM:SS.mmm' UTC text like the other tables.
CREATE TABLE IF NOT EXISTS "LiteLLM_ProxyModelTable" (
    "model_id" TEXT NOT NULL PRIMARY KEY,
    "model_name" TEXT NOT NULL,
    "litellm_params" TEXT NOT NULL,
    "model_info" TEXT,
    "blocked" INTEGER NOT NULL DEFAULT 0,
    "created_at" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "updated_by" TEXT NOT NULL
);
