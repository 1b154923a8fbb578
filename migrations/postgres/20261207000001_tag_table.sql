-- Tags (LiteLLM's LiteLLM_TagTable): the /tag/* routes' rows, each with the models it names,
-- its spend, and an optional budget row (budget_id -> LiteLLM_BudgetTable) whose max_budget
-- and rpm / tpm limits apply to calls carrying the tag. IF NOT EXISTS: a database LiteLLM
-- migrated keeps its own table.
CREATE TABLE IF NOT EXISTS "LiteLLM_TagTable" (
    "tag_name" TEXT NOT NULL,
    "description" TEXT,
    "models" TEXT[],
    "model_info" JSONB,
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "budget_id" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "LiteLLM_TagTable_pkey" PRIMARY KEY ("tag_name")
);
