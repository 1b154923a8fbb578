-- A key's lifetime spend and last use, as LiteLLM keeps them: "spend" goes back to 0 when the
-- key's budget resets, "total_spend" never does.
ALTER TABLE "LiteLLM_VerificationToken" ADD COLUMN "total_spend" REAL NOT NULL DEFAULT 0.0;
ALTER TABLE "LiteLLM_VerificationToken" ADD COLUMN "last_active" TEXT;
