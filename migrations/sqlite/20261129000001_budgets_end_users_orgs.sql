-- Budgets, end users (customers), team memberships and organizations: the Postgres tables of
-- the same migration, with lists and objects as JSON text and timestamps as UTC text.
CREATE TABLE IF NOT EXISTS "LiteLLM_BudgetTable" (
    "budget_id" TEXT NOT NULL PRIMARY KEY,
    "max_budget" REAL,
    "soft_budget" REAL,
    "max_parallel_requests" INTEGER,
    "tpm_limit" INTEGER,
    "rpm_limit" INTEGER,
    "tpd_limit" INTEGER,
    "model_max_budget" TEXT,
    "budget_duration" TEXT,
    "budget_reset_at" TEXT,
    "allowed_models" TEXT NOT NULL DEFAULT '[]',
    "temp_budget_increase" REAL,
    "temp_budget_expiry" TEXT,
    "created_at" TEXT,
    "created_by" TEXT NOT NULL,
    "updated_at" TEXT,
    "updated_by" TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS "LiteLLM_EndUserTable" (
    "user_id" TEXT NOT NULL PRIMARY KEY,
    "alias" TEXT,
    "spend" REAL NOT NULL DEFAULT 0.0,
    "allowed_model_region" TEXT,
    "default_model" TEXT,
    "models" TEXT NOT NULL DEFAULT '[]',
    "budget_id" TEXT,
    "object_permission_id" TEXT,
    "blocked" INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS "LiteLLM_TeamMembership" (
    "user_id" TEXT NOT NULL,
    "team_id" TEXT NOT NULL,
    "spend" REAL NOT NULL DEFAULT 0.0,
    "total_spend" REAL NOT NULL DEFAULT 0.0,
    "budget_id" TEXT,
    PRIMARY KEY ("user_id", "team_id")
);

CREATE TABLE IF NOT EXISTS "LiteLLM_OrganizationTable" (
    "organization_id" TEXT NOT NULL PRIMARY KEY,
    "organization_alias" TEXT NOT NULL,
    "budget_id" TEXT NOT NULL,
    "metadata" TEXT NOT NULL DEFAULT '{}',
    "models" TEXT NOT NULL DEFAULT '[]',
    "spend" REAL NOT NULL DEFAULT 0.0,
    "model_spend" TEXT NOT NULL DEFAULT '{}',
    "object_permission_id" TEXT,
    "created_at" TEXT,
    "created_by" TEXT NOT NULL,
    "updated_at" TEXT,
    "updated_by" TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS "LiteLLM_OrganizationMembership" (
    "user_id" TEXT NOT NULL,
    "organization_id" TEXT NOT NULL,
    "user_role" TEXT,
    "spend" REAL DEFAULT 0.0,
    "budget_id" TEXT,
    "created_at" TEXT,
    "updated_at" TEXT,
    PRIMARY KEY ("user_id", "organization_id")
);
